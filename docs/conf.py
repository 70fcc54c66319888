"""Sphinx configuration of the skinfo documentation (builds offline)."""

import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

import skinfo  # noqa: E402

project = "skinfo"
author = "the skinfo developers"
copyright = f"{date.today().year}, {author}"
release = version = skinfo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# results/*.md are included by benchmarks.md and the method pages, not pages of their own
exclude_patterns = ["_build", "examples/*.md", "auto_examples/*.ipynb", "results/*.md"]
autosummary_generate = True
# document skinfo's own methods (also those inherited from skinfo's bases), not
# sklearn's mixin methods, whose docstrings point into sklearn's own site
autodoc_default_options = {
    "members": True,
    "inherited-members": (
        "BaseEstimator,ClassifierMixin,TransformerMixin,OutlierMixin,"
        "ClassNamePrefixFeaturesOutMixin,_SetOutputMixin,_MetadataRequester,object"
    ),
    "exclude-members": "set_fit_request,set_score_request,set_predict_request,"
    "set_transform_request,set_output",
}
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"
html_static_path = []
suppress_warnings = ["myst.header"]

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}
