"""Confidence landscapes of every classifier on the OVA paper's 2-D toy (its Figure 1).

Ten Gaussian blobs on a circle of radius 20 (``skinfo.datasets.make_ova_toy``);
each panel shows the classifier's confidence over the plane: the maximum
predicted probability, and for OVAClassifier the maximum one-vs-all
probability (its open-world confidence). Writes
``benchmarks/results/confidence_landscapes.png`` (and, with ``--readme``,
``docs/images/confidence_landscapes.png``, the picture in the README).

Run: ``python -m benchmarks.landscapes [--readme]``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from skinfo import (
    IBINNClassifier,
    MASSClassifier,
    OVAClassifier,
    SoftmaxClassifier,
    VIBClassifier,
)
from skinfo.datasets import make_ova_toy
from skinfo.plotting import confidence_landscapes

from ._common import RESULTS

COMMON = dict(hidden_layer_sizes=(16, 16), max_epochs=60, lr=1e-2, random_state=0)


def models() -> dict[str, tuple[object, object]]:
    """(estimator, confidence) per panel."""

    def max_ova(est, points):
        return est.predict_ova_proba(points).max(axis=1)

    return {
        "SoftmaxCE": (SoftmaxClassifier(**COMMON), "max_proba"),
        "OVA, distance logits": (OVAClassifier(logits="distance", **COMMON), max_ova),
        "OVA, affine logits": (OVAClassifier(logits="affine", **COMMON), max_ova),
        "VIB (kl)": (VIBClassifier(latent_dim=2, **COMMON), "max_proba"),
        "MASS": (MASSClassifier(latent_dim=2, n_components=2, **COMMON), "max_proba"),
        "IB-INN": (
            IBINNClassifier(n_blocks=4, max_epochs=60, lr=1e-2, random_state=0),
            "max_proba",
        ),
    }


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="also update the README picture")
    args = parser.parse_args(argv)
    X, y = make_ova_toy(200, random_state=0)
    fig = confidence_landscapes(models(), X, y, ncols=3, radius=60, resolution=120)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "confidence_landscapes.png"
    fig.savefig(path, dpi=90)
    print(f"written: {path}")
    if args.readme:
        target = Path(__file__).resolve().parents[1] / "docs" / "images"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / "confidence_landscapes.png")
        print(f"written: {target / 'confidence_landscapes.png'}")


if __name__ == "__main__":
    main()
