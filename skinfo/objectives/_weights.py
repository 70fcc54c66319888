"""Per-sample weights in the objectives: weighted means and weighted batch variances.

Every criterion takes ``sample_weight`` (a non-negative float tensor of shape
``(B,)`` or ``None``) and, as sklearn's estimators do, replaces each batch mean
``mean_i l_i`` of a per-sample term by the weighted mean
``sum_i w_i l_i / sum_i w_i``. So integer weights are the same as repeating
rows, a zero weight removes a row, and multiplying every weight by the same
constant changes nothing. ``sample_weight=None`` runs exactly the unweighted
computation (the same operations, bitwise the same result).

Terms built from batch statistics instead of per-sample values (the variances
of the VIB surrogates) use weighted statistics with *reliability* weights
(numpy's ``aweights``): the weighted mean ``m = sum_i w_i z_i / V1`` and the
unbiased weighted variance ``sum_i w_i (z_i - m)^2 / (V1 - V2 / V1)`` with
``V1 = sum_i w_i`` and ``V2 = sum_i w_i^2``. These are invariant to scaling
the weights and equal the unbiased variance for unit weights, and zero weights
remove rows; integer weights are *not* the same as repeating rows there
(repeating rows changes the ``n - 1`` of the unbiased variance).

A batch (or a MASS Jacobian subsample) whose weights are all zero contributes
0 to the loss, with zero gradients, instead of ``0 / 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_weights(sample_weight: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sample_weight`` as a tensor of the dtype and device of ``values``, shape ``(B,)``."""
    if sample_weight.ndim != 1 or sample_weight.shape[0] != values.shape[0]:
        raise ValueError(
            f"sample_weight must have shape ({values.shape[0]},) (one weight per row of the "
            f"batch), got {tuple(sample_weight.shape)}."
        )
    return sample_weight.to(device=values.device, dtype=values.dtype)


def safe_total(total: torch.Tensor) -> torch.Tensor:
    """A total weight to divide by: 1 where it is 0 (the numerator is then 0 as well)."""
    return torch.where(total > 0, total, torch.ones_like(total))


def weighted_mean(values: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_i w_i v_i / sum_i w_i`` over the rows of ``values``; ``values.mean()`` without weights.

    Parameters
    ----------
    values : Tensor of shape (B,)
        One value per row (a per-sample loss).
    sample_weight : Tensor of shape (B,) or None
        Non-negative row weights. ``None``: the plain mean (bitwise
        ``values.mean()``). All zero: 0.

    Returns
    -------
    Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> v = torch.tensor([1.0, 2.0, 6.0])
    >>> float(weighted_mean(v)), float(weighted_mean(v, torch.tensor([2.0, 1.0, 1.0])))
    (3.0, 2.5)
    """
    if sample_weight is None:
        return values.mean()
    w = _check_weights(sample_weight, values)
    return (w * values).sum() / safe_total(w.sum())


def weighted_cross_entropy(
    logits: torch.Tensor,
    y: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Weighted mean over rows of ``F.cross_entropy(logits, y, label_smoothing=...)``.

    Without weights this is ``F.cross_entropy`` with its mean reduction itself.

    Parameters
    ----------
    logits : Tensor of shape (B, K)
    y : Tensor of shape (B,)
        Class indices.
    sample_weight : Tensor of shape (B,) or None
    label_smoothing : float

    Returns
    -------
    Tensor of shape ()
    """
    if sample_weight is None:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    per_row = F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)
    return weighted_mean(per_row, sample_weight)


def weighted_group_variance(
    z: torch.Tensor, groups: torch.Tensor, n_groups: int, sample_weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unbiased per-group variances of the columns of ``z``, with reliability weights.

    For group ``c`` (the rows with ``groups == c``) and weights ``w``:
    ``V1_c = sum_{i in c} w_i``, ``V2_c = sum_{i in c} w_i^2``, the mean
    ``m_c = sum_{i in c} w_i z_i / V1_c`` and the variance
    ``sum_{i in c} w_i (z_i - m_c)^2 / (V1_c - V2_c / V1_c)`` (numpy's
    ``np.cov(..., aweights=w)``; ``n_c - 1`` in the denominator without
    weights). A group is valid when it has at least 2 rows of positive
    weight; the variance of an invalid group is a finite placeholder, to be
    masked with ``valid``. Computed with one scatter (no loop over groups).

    Parameters
    ----------
    z : Tensor of shape (B, K)
    groups : Tensor of shape (B,)
        Group index of each row, in ``[0, n_groups)``.
    n_groups : int
    sample_weight : Tensor of shape (B,) or None

    Returns
    -------
    var : Tensor of shape (n_groups, K)
    total : Tensor of shape (n_groups,)
        ``V1_c``, the group's total weight (its row count without weights).
    valid : Tensor of shape (n_groups,), bool
    """
    onehot = F.one_hot(groups, n_groups).to(z.dtype)  # (B, C)
    if sample_weight is None:
        weights = onehot
        total = n_positive = onehot.sum(0)
    else:
        w = _check_weights(sample_weight, z)
        weights = onehot * w.unsqueeze(1)
        total = weights.sum(0)
        n_positive = onehot.T @ (w > 0).to(z.dtype)
    means = weights.T @ z / safe_total(total).unsqueeze(1)  # (C, K)
    sq = weights.T @ (z - means[groups]).pow(2)  # (C, K)
    valid = n_positive >= 2
    if sample_weight is None:
        denominator = total - 1.0
    else:
        denominator = total - weights.pow(2).sum(0) / safe_total(total)
    denominator = torch.where(valid, denominator, torch.ones_like(denominator))
    return sq / denominator.unsqueeze(1), total, valid
