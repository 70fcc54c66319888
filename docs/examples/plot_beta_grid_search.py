"""
Choosing beta with GridSearchCV
===============================

``beta`` weighs the information-theoretic term of MASS, VIB and IB-INN. Every
estimator is a scikit-learn estimator, so ``GridSearchCV`` selects it with
any scorer. Here three scores of :class:`~skinfo.VIBClassifier` on digits are
cross-validated for each ``beta``: the expected calibration error
(:data:`skinfo.scorers.neg_expected_calibration_error`), the negative
log-likelihood (:data:`skinfo.scorers.neg_negative_log_likelihood`) and the
accuracy.

A large ``beta`` compresses the representation until the classifier predicts
nearly uniform probabilities: its accuracy collapses, yet its ECE is tiny
(a model that is always 10 % confident and right 10 % of the time is
calibrated). Select with a proper scoring rule such as the NLL, and read the
ECE next to the accuracy. A scorer for OOD detection
(:func:`skinfo.scorers.make_ood_scorer`) plugs in the same way.
"""

import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV

from skinfo import VIBClassifier
from skinfo.datasets import load_digits_split
from skinfo.scorers import neg_expected_calibration_error, neg_negative_log_likelihood

X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
betas = [1e-4, 1e-2, 1.0]
search = GridSearchCV(
    VIBClassifier(max_epochs=10, random_state=0),
    {"beta": betas},
    scoring={
        "ece": neg_expected_calibration_error,
        "nll": neg_negative_log_likelihood,
        "accuracy": "accuracy",
    },
    refit="nll",
    cv=3,
).fit(X_train, y_train)

results = search.cv_results_
print("beta selected by the NLL:", search.best_params_["beta"])
print("its test accuracy:", round(search.best_estimator_.score(X_test, y_test), 3))

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(betas, -results["mean_test_ece"], marker="o", label="ECE")
ax.plot(betas, -results["mean_test_nll"], marker="^", label="NLL")
ax.plot(betas, 1 - results["mean_test_accuracy"], marker="s", label="error rate")
ax.axvline(search.best_params_["beta"], color="gray", linestyle=":", label="selected")
ax.set_xscale("log")
ax.set_xlabel("beta")
ax.set_ylabel("3-fold cross-validated value (lower is better)")
ax.legend()
plt.show()
