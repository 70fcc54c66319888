"""numpydoc validation of the public estimators' methods: every parameter and return value
is documented."""

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
