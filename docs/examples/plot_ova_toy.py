"""
One-vs-all confidence far from the data
=======================================

The 2-D toy of Padhy et al. (2020, appendix E.1): ten Gaussian blobs on a
circle. A softmax classifier is confident everywhere, even far from the data;
distance-based one-vs-all confidence falls with the distance to the classes.
"""

import matplotlib.pyplot as plt
import numpy as np

from skinfo import OVAClassifier, SoftmaxClassifier
from skinfo.datasets import make_ova_toy

X, y = make_ova_toy(200, random_state=0)
common = dict(hidden_layer_sizes=(16, 16), max_epochs=60, lr=1e-2, random_state=0)
models = {
    "softmax": SoftmaxClassifier(**common).fit(X, y),
    "one-vs-all, distance logits": OVAClassifier(logits="distance", **common).fit(X, y),
}

grid = np.linspace(-60, 60, 121)
xx, yy = np.meshgrid(grid, grid)
points = np.c_[xx.ravel(), yy.ravel()]
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    if hasattr(model, "predict_ova_proba"):
        confidence = model.predict_ova_proba(points).max(axis=1)
    else:
        confidence = model.predict_proba(points).max(axis=1)
    image = ax.contourf(xx, yy, confidence.reshape(xx.shape), levels=np.linspace(0, 1, 11))
    ax.scatter(X[:, 0], X[:, 1], c=y, s=2, cmap="tab10")
    ax.set(title=name, xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.colorbar(image, ax=axes, label="max confidence")
plt.show()
