"""
Calibration of the classifiers on digits
========================================

Reliability diagrams of four classifiers trained on scikit-learn's 8x8
digits: the softmax baseline, the same network with post-hoc temperature
scaling (scikit-learn's ``CalibratedClassifierCV(method="temperature")``),
MASS and VIB. Each bar is the accuracy of the test predictions whose
confidence falls in that bin; a calibrated model follows the diagonal. The
title gives the 15-bin expected calibration error.
"""

import matplotlib.pyplot as plt
from sklearn.calibration import CalibratedClassifierCV

from skinfo import MASSClassifier, SoftmaxClassifier, VIBClassifier
from skinfo.datasets import load_digits_split
from skinfo.metrics import brier_score, negative_log_likelihood
from skinfo.plotting import reliability_diagram

X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
common = dict(max_epochs=20, random_state=0)
models = {
    "softmax": SoftmaxClassifier(**common),
    "softmax + temperature": CalibratedClassifierCV(
        SoftmaxClassifier(**common), method="temperature", cv=3, ensemble=False
    ),
    "MASS (beta=1e-3)": MASSClassifier(beta=1e-3, **common),
    "VIB (beta=1e-3)": VIBClassifier(beta=1e-3, **common),
}

fig, axes = plt.subplots(1, 4, figsize=(16, 4), sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    proba = model.fit(X_train, y_train).predict_proba(X_test)
    reliability_diagram(y_test, proba, ax=ax)
    ax.set_title(f"{name}\n{ax.get_title()}", fontsize=10)
    print(
        f"{name:22s} accuracy {model.score(X_test, y_test):.3f}  "
        f"NLL {negative_log_likelihood(y_test, proba):.3f}  Brier {brier_score(y_test, proba):.3f}"
    )
fig.tight_layout()
plt.show()
