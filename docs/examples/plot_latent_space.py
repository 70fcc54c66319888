"""
Learned representations
=======================

``transform`` returns the representation each classifier learns.
:func:`skinfo.plotting.latent_space` draws it coloured by class, projected to
its first two principal components when it has more than two dimensions (a
projection keeps only part of the structure: overlapping classes in the plot
may still be separated in the full representation). MASS fits a
class-conditional Gaussian mixture on its representation; the softmax
network only needs classes that a linear layer can separate.
"""

import matplotlib.pyplot as plt

from skinfo import MASSClassifier, SoftmaxClassifier
from skinfo.datasets import load_digits_split
from skinfo.plotting import latent_space

X_train, X_test, y_train, y_test = load_digits_split(random_state=0)
models = {
    "softmax": SoftmaxClassifier(max_epochs=20, random_state=0),
    "MASS (beta=1e-3)": MASSClassifier(beta=1e-3, max_epochs=20, random_state=0),
}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (name, model) in zip(axes, models.items()):
    latent_space(model.fit(X_train, y_train), X_test, y_test, ax=ax)
    ax.set_title(f"{name}: test images")
fig.tight_layout()
plt.show()
