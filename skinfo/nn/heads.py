"""Output heads and the classifier network that composes an encoder with one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistanceLogits(nn.Module):
    """Negative Euclidean distances to learned class centers: ``z_k = -||h - w_k||``.

    With ``learn_scale=True`` the logits are ``z_k = -s ||h - w_k||`` with one
    scalar ``s = exp(log_scale) > 0`` learned with the centers (initial value
    1, the paper's logits). This is not in Padhy et al. (2020): it sets the
    distance at which the one-vs-all probability ``2 sigmoid(z_k)`` reaches a
    given value, i.e. a learned inverse temperature of the distances.

    The norm is computed as ``sqrt(max(||h||^2 - 2 h.w_k + ||w_k||^2, 0) + eps)``:

    * the squared distance is expanded so that a matrix product computes it,
      with no ``(batch, n_classes, width)`` temporary (faster, and memory
      linear in batch, classes and width). In float32 the expansion
      loses about ``1e-7 ||h||^2`` to cancellation, so distances below about
      ``3e-4 ||h||`` are resolved only to that level; larger ones are exact to
      float32 rounding. The gradient ``(h - w_k) / ||h - w_k||`` keeps its
      exact direction.
    * ``eps`` makes the gradient defined at ``h = w_k`` (the plain norm has
      none there); it is tiny and changes distances by at most ``sqrt(eps)``.

    Parameters
    ----------
    in_features : int
        Width of the representation ``h``.
    n_classes : int
        Number of centers ``w_k``.
    eps : float, default=1e-12
        Added under the square root.
    init : {'zeros', 'normal'}, default='zeros'
        Initial centers. ``'zeros'`` follows the paper (the labels break the
        symmetry through the encoder); ``'normal'`` draws N(0, 1/in_features).
    learn_scale : bool, default=False
        Multiply the distances by a learned scale ``s = exp(log_scale)``.

    Attributes
    ----------
    weight : nn.Parameter of shape (n_classes, in_features)
        The class centers ``w_k``.
    log_scale : nn.Parameter of shape () or None
        ``log s`` when ``learn_scale``, else None (``s = 1``).

    Examples
    --------
    >>> import torch
    >>> head = DistanceLogits(2, 3)
    >>> head(torch.tensor([[3.0, 4.0]]))
    tensor([[-5., -5., -5.]], grad_fn=<NegBackward0>)
    >>> scaled = DistanceLogits(2, 3, learn_scale=True)
    >>> with torch.no_grad():
    ...     _ = scaled.log_scale.fill_(torch.tensor(2.0).log())
    >>> scaled(torch.tensor([[3.0, 4.0]]))
    tensor([[-10., -10., -10.]], grad_fn=<MulBackward0>)
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        eps: float = 1e-12,
        init: str = "zeros",
        learn_scale: bool = False,
    ) -> None:
        super().__init__()
        weight = torch.zeros(n_classes, in_features)
        if init == "normal":
            weight.normal_(0.0, in_features**-0.5)
        elif init != "zeros":
            raise ValueError(f"init must be 'zeros' or 'normal', got {init!r}.")
        self.weight = nn.Parameter(weight)
        self.log_scale = nn.Parameter(torch.zeros(())) if learn_scale else None
        self.eps = eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits ``-s ||h - w_k||`` for every class (``s = 1`` without a learned scale).

        Parameters
        ----------
        h : torch.Tensor of shape (B, in_features)
            Representations.

        Returns
        -------
        torch.Tensor of shape (B, n_classes)
            Minus the distance of each row to each class centre (at most 0).
        """
        w = self.weight
        sq = h.pow(2).sum(-1, keepdim=True) - 2.0 * (h @ w.T) + w.pow(2).sum(-1)
        distance = torch.sqrt(sq.clamp_min(0.0) + self.eps)
        if self.log_scale is None:
            return -distance
        return distance * -self.log_scale.exp()


class EncoderHead(nn.Module):
    """``head(encoder(x))``: the representation ``h = encoder(x)`` and its logits.

    ``forward`` returns the logits; ``embed`` returns ``h``.

    Parameters
    ----------
    encoder : nn.Module
        Maps rows ``(B, D)`` to representations ``(B, width)``.
    head : nn.Module
        Maps representations to logits ``(B, K)``.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits ``head(encoder(x))``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            One logit per class.
        """
        return self.head(self.encoder(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``h = encoder(x)``.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, width)
            The encoder's output.
        """
        return self.encoder(x)


class SoftmaxNetwork(EncoderHead):
    """Encoder + affine logits with softmax probabilities (the SoftmaxCE baseline).

    Parameters
    ----------
    encoder : nn.Module
        Maps rows ``(B, D)`` to representations ``(B, width)``.
    head : nn.Module
        Maps representations to logits ``(B, K)``, e.g. ``nn.Linear(width, K)``.
    """

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities, the log-softmax of the logits.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Normalized class log-probabilities.
        """
        return F.log_softmax(self(x), dim=-1)


def ova_log_proba(logits: torch.Tensor, distance: bool) -> torch.Tensor:
    """log p_k of the K independent one-vs-all problems (Padhy et al., Eq. 5 / 6).

    Affine logits: ``p_k = sigmoid(z_k)``. Distance logits (``z_k <= 0``):
    ``p_k = 2 sigmoid(z_k)``, so a distance of 0 gives confidence 1.
    """
    log_p = F.logsigmoid(logits)
    return log_p + torch.log(torch.tensor(2.0, dtype=logits.dtype)) if distance else log_p


def ova_log_complement(logits: torch.Tensor, distance: bool) -> torch.Tensor:
    """log(1 - p_k), computed stably.

    Affine: ``log(1 - sigmoid(z)) = logsigmoid(-z)``. Distance, with
    ``d = -z >= 0``: ``1 - 2 sigmoid(-d) = (1 - e^-d) / (1 + e^-d)``, so
    ``log(1 - p) = log(-expm1(-d)) - softplus(-d)``.
    """
    if not distance:
        return F.logsigmoid(-logits)
    d = (-logits).clamp_min(torch.finfo(logits.dtype).tiny)
    return torch.log(-torch.expm1(-d)) - F.softplus(-d)


class OVANetwork(EncoderHead):
    """Encoder + one-vs-all head (affine or distance logits).

    ``ova_log_proba`` gives the K unnormalized one-vs-all log-probabilities;
    ``log_proba`` gives the class posterior under the closed-world assumption
    that exactly one of the K independent one-vs-all events holds:
    ``P(k | exactly one) = p_k prod_{j != k}(1 - p_j) / sum_i (...)``, i.e. the
    softmax of the log-odds ``log p_k - log(1 - p_k)``.

    Parameters
    ----------
    encoder : nn.Module
        Maps rows ``(B, D)`` to representations ``(B, width)``.
    head : nn.Module
        Maps representations to logits ``(B, K)``: ``nn.Linear`` (affine logits)
        or :class:`DistanceLogits`.
    distance : bool
        Whether the logits are minus distances (``p_k = 2 sigmoid(z_k)``) rather
        than affine (``p_k = sigmoid(z_k)``).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, distance: bool) -> None:
        super().__init__(encoder, head)
        self.distance = distance

    def ova_log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """The K one-vs-all log-probabilities ``log p_k`` (not normalized over classes).

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            ``log p_k`` of each independent one-vs-all problem; the maximum over
            ``k`` is the confidence that the input belongs to some class.
        """
        return ova_log_proba(self(x), self.distance)

    def log_proba(self, x: torch.Tensor) -> torch.Tensor:
        """The class posterior under the assumption that exactly one class holds.

        Parameters
        ----------
        x : torch.Tensor of shape (B, D)
            Input rows.

        Returns
        -------
        torch.Tensor of shape (B, K)
            Normalized class log-probabilities, the log-softmax of the log-odds.
        """
        logits = self(x)
        log_odds = ova_log_proba(logits, self.distance) - ova_log_complement(logits, self.distance)
        return torch.log_softmax(log_odds, dim=-1)
