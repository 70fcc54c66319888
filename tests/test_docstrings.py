"""numpydoc validation of the public API: the estimators' methods, and the functions, classes
and methods of the public modules (metrics, scorers, plotting, datasets, callbacks, nn,
persistence). Every parameter and return value is documented."""

import importlib
import inspect

import pytest
from numpydoc import validate as numpydoc_validate

import skinfo

#: numpydoc checks enforced: a docstring exists, every parameter is documented with a
#: description and no unknown one is, there is a Returns section with a description.
CHECKS = {"GL08", "PR01", "PR02", "PR07", "RT01", "RT03"}

#: Methods sklearn's mixins define (documented by sklearn).
INHERITED = {
    "fit_predict",
    "fit_transform",
    "get_feature_names_out",
    "get_metadata_routing",
    "get_params",
    "score",
    "set_fit_request",
    "set_output",
    "set_params",
    "set_score_request",
}

ESTIMATORS = [
    "SoftmaxClassifier",
    "OVAClassifier",
    "VIBClassifier",
    "MASSClassifier",
    "IBINNClassifier",
    "ApproxMassFlowDetector",
    "OODDetector",
]


def _public_methods():
    for name in ESTIMATORS:
        cls = getattr(skinfo, name)
        for method, obj in inspect.getmembers(cls, callable):
            if not method.startswith("_") and method not in INHERITED and not isinstance(obj, type):
                yield f"skinfo.{name}.{method}"


@pytest.mark.parametrize("qualname", sorted(_public_methods()))
def test_public_method_docstrings_are_complete(qualname):
    result = numpydoc_validate.validate(qualname)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in CHECKS]
    assert not errors, errors


#: Public modules whose functions, classes and methods are validated, with the
#: names they export (``None``: the module's ``__all__``).
MODULES = {
    "skinfo.metrics": None,
    "skinfo.scorers": None,
    "skinfo.plotting": None,
    "skinfo.datasets": None,
    "skinfo.callbacks": None,
    "skinfo.nn": None,
    "skinfo.persistence": ("save", "load"),
}


def _own_methods(cls):
    """Public methods a class defines itself or takes from a skinfo base class (not torch's or
    skorch's): skorch's callback hooks (``on_*``, ``initialize``) are documented by skorch."""
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("skinfo"):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if not inspect.isfunction(attr):
                continue
            if name.startswith("on_") or name == "initialize":
                continue
            yield name


def _public_api():
    for module_name, names in MODULES.items():
        module = importlib.import_module(module_name)
        if names is None:
            names = getattr(module, "__all__", None) or [
                name
                for name, obj in vars(module).items()
                if not name.startswith("_") and getattr(obj, "__module__", None) == module_name
            ]
        for name in names:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}"
            elif isinstance(obj, type):
                yield f"{module_name}.{name}"
                for method in _own_methods(obj):
                    yield f"{module_name}.{name}.{method}"


@pytest.mark.parametrize("qualname", sorted(set(_public_api())))
def test_public_function_docstrings_are_complete(qualname):
    result = numpydoc_validate.validate(qualname)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in CHECKS]
    assert not errors, errors


def test_public_api_listing_covers_every_module():
    names = set(_public_api())
    for expected in (
        "skinfo.metrics.expected_calibration_error",
        "skinfo.scorers.make_ood_scorer",
        "skinfo.plotting.reliability_diagram",
        "skinfo.datasets.load_digits_split",
        "skinfo.callbacks.DivergenceCheck",
        "skinfo.nn.VIBNetwork.forward",
        "skinfo.nn.resnet20",
        "skinfo.persistence.save",
        "skinfo.persistence.load",
    ):
        assert expected in names
    assert not any(".on_" in name or name.endswith(".initialize") for name in names)
