"""Batched Jacobians and their log-volumes ``log J_f(x) = 0.5 log det(Df Df^T)``.

Two ways to get the per-sample Jacobian ``Df(x)`` (shape ``d x D``) of a map
``f: R^D -> R^d`` for a batch of inputs:

* :func:`batched_jacobian`: generic, for any module, with ``torch.func``
  (``vmap`` over samples of ``jacrev``, or of ``jacfwd`` when the input is
  narrower than the output). The result stays in the autograd graph, so a loss
  built on it can be differentiated with respect to the parameters.
* :class:`MLPChain`: the analytic chain rule of a multilayer perceptron,
  ``Df = W_L diag(act'(h_{L-1})) W_{L-1} ... diag(act'(h_1)) W_1``, multiplied
  from the output side (``d`` rows throughout) and reusing the pre-activations
  ``h_l`` of the forward pass. Also differentiable.

:func:`log_volume` turns Jacobians into ``log J_f``. When ``d <= D`` this is
``0.5 log det(Df Df^T)``, the log of the ``d``-dimensional volume scaling of
the map. When ``d > D`` (a representation wider than the input), ``Df Df^T`` has
rank ``D`` and its determinant is 0; the ``D``-dimensional volume of the image,
``0.5 log det(Df^T Df)``, is used instead. Both are the log of the product of
the singular values of ``Df``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.func import jacfwd, jacrev, vmap

from .first_order import first_order_only


def _log_diag(chol: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
    """``sum log diag(chol)`` per matrix, ``-inf`` where the Cholesky factorization failed."""
    out = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return out.masked_fill_(info != 0, -torch.inf)


def _wide_log_volume(jac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``0.5 log det(J J^T)`` per row (input dtype) and the float64 Cholesky factor of ``J J^T``."""
    j64 = jac.to(torch.float64)
    chol, info = torch.linalg.cholesky_ex(j64 @ j64.transpose(-1, -2))
    return _log_diag(chol, info).to(jac.dtype), chol


def _wide_log_volume_grad(
    jac: torch.Tensor, chol: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """``grad * (J J^T)^-1 J``: the gradient of ``0.5 log det(J J^T)``, in the dtype of ``J``."""
    gram_inv = torch.cholesky_inverse(chol) * grad.to(torch.float64)[:, None, None]
    return gram_inv.to(jac.dtype) @ jac


class _WideLogVolume(torch.autograd.Function):
    """``0.5 log det(J J^T)`` for ``J`` of shape (B, d, D) with ``d < D``.

    The d x d Gram matrix and its Cholesky factor are computed in float64 (the
    Gram matrix squares the condition number). The backward pass uses the
    closed form ``d/dJ 0.5 log det(J J^T) = (J J^T)^-1 J``: one (d x d) @ (d x D)
    product per row in the input dtype, instead of differentiating the
    float64 Gram product (which is slow for wide inputs); the direct
    route of :class:`_MLPChainLogVolume` uses the same two steps.
    Differentiable once (:func:`skinfo.nn.first_order.first_order_only`): the
    closed form is not differentiated again, so ``create_graph=True`` raises
    a clear error instead of returning wrong second derivatives.
    """

    @staticmethod
    def forward(ctx, jac: torch.Tensor) -> torch.Tensor:
        out, chol = _wide_log_volume(jac)
        # saved: the Jacobians J and the float64 Cholesky factor of J J^T
        ctx.save_for_backward(jac, chol)
        return out

    @staticmethod
    @first_order_only
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        jac, gram_chol = ctx.saved_tensors  # as saved in forward: J, chol(J J^T)
        return _wide_log_volume_grad(jac, gram_chol, grad)


def log_volume(jac: torch.Tensor) -> torch.Tensor:
    """``log J`` of a batch of Jacobians ``(B, d, D)``: the sum of the log singular values.

    ``0.5 log det(J J^T)`` if ``d < D``, ``log |det J|`` if ``d = D``, else
    ``0.5 log det(J^T J)``; the determinant is taken in float64 whatever the
    input dtype. A numerically singular matrix gives ``-inf`` (the map is
    degenerate: it collapses a direction), so that a training loss built on it
    diverges loudly rather than silently. Differentiable once (first-order
    gradients, which is what training needs; ``create_graph=True`` through
    ``d != D`` raises a ``RuntimeError``).

    Examples
    --------
    >>> import torch
    >>> J = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    >>> log_volume(J)  # log 6
    tensor([1.7918])
    """
    if jac.ndim != 3:
        raise ValueError(f"Expected Jacobians of shape (B, d, D), got {tuple(jac.shape)}.")
    d, big_d = jac.shape[-2], jac.shape[-1]
    if d == big_d:
        return torch.linalg.slogdet(jac.to(torch.float64))[1].to(jac.dtype)  # log|det Df|
    if d > big_d:
        jac = jac.transpose(-1, -2)  # the volume of the image: 0.5 log det(Df^T Df)
    return _WideLogVolume.apply(jac)


def batched_jacobian(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str = "auto"
) -> torch.Tensor:
    """Per-sample Jacobians of a batch map ``f: (B, D) -> (B, d)``.

    ``f`` must treat rows independently (no batch statistics; put batch norm in
    evaluation mode first). Each row is pushed through ``f`` as a batch of one
    under ``torch.func.vmap``.

    Parameters
    ----------
    f : callable
        Maps a batch of rows to a batch of outputs.
    x : tensor of shape (B, D)
        The inputs at which to differentiate ``f``.
    mode : {'auto', 'rev', 'fwd'}, default='auto'
        ``'rev'``: ``jacrev`` (``d`` vector-Jacobian products per row; best when
        ``d < D``); ``'fwd'``: ``jacfwd`` (``D`` Jacobian-vector products;
        best when ``D < d``); ``'auto'`` picks by the sizes.

    Returns
    -------
    tensor of shape (B, d, D)
        ``Df`` at each row, in the autograd graph (a loss built on it can be
        differentiated with respect to the parameters of ``f``).

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    >>> J = batched_jacobian(lambda x: x @ A.T, torch.randn(4, 2))
    >>> J.shape, bool(torch.allclose(J[0], A))
    (torch.Size([4, 3, 2]), True)
    """

    def single(row: torch.Tensor) -> torch.Tensor:
        return f(row.unsqueeze(0)).squeeze(0)

    if mode == "auto":
        with torch.no_grad():
            d = f(x[:1]).shape[-1]
        mode = "fwd" if x.shape[-1] < d else "rev"
    if mode not in ("rev", "fwd"):
        raise ValueError(f"mode must be 'auto', 'rev' or 'fwd', got {mode!r}.")
    transform = jacrev if mode == "rev" else jacfwd
    kwargs = {"randomness": "different"} if mode == "fwd" else {}
    return vmap(transform(single, **kwargs), randomness="different")(x)


def log_jacobian(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str = "auto"
) -> torch.Tensor:
    """``log J_f(x)`` per row with the generic ``torch.func`` path.

    :func:`batched_jacobian` followed by :func:`log_volume`: the sum of the log
    singular values of ``Df(x)``, i.e. ``0.5 log det(Df Df^T)`` when ``f``
    narrows its input.

    Parameters
    ----------
    f : callable
        Maps a batch of rows ``(B, D)`` to ``(B, d)``, treating rows independently.
    x : tensor of shape (B, D)
        The inputs.
    mode : {'auto', 'rev', 'fwd'}, default='auto'
        How the Jacobians are taken (see :func:`batched_jacobian`).

    Returns
    -------
    tensor of shape (B,)
        ``log J_f`` at each row; ``-inf`` where ``Df`` is numerically singular.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[2.0, 1.0], [0.0, 0.5]])
    >>> log_jacobian(lambda x: x @ A.T, torch.randn(3, 2))  # log |det A| = 0
    tensor([0., 0., 0.])
    """
    return log_volume(batched_jacobian(f, x, mode))


def activation_derivative(act: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative ``act'(h)``, differentiable with respect to ``h``.

    Closed forms for ELU, ReLU, LeakyReLU, Tanh and Softplus
    (:func:`activation_derivatives`); any other elementwise activation goes
    through ``torch.func.jvp`` with a tangent of ones.
    """
    closed = activation_derivatives(act, h)
    if closed is not None:
        return closed[0]
    return torch.func.jvp(act, (h,), (torch.ones_like(h),))[1]


_ELEMENTWISE = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Softplus, nn.GELU, nn.Sigmoid, nn.SiLU)


def mlp_forward(
    layers: Sequence[nn.Module], x: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Run ``Linear (act Linear)*`` layers; return the output and the hidden pre-activations.

    The pre-activations ``(h_1, ..., h_{L-1})`` are what :func:`mlp_jacobian`
    needs, so the analytic Jacobian costs no second forward pass.
    """
    hidden = []
    out = x
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        out = layer(out)
        if i % 2 == 0 and i < last:
            hidden.append(out)
    return out, tuple(hidden)


def activation_derivatives(
    act: nn.Module, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(act'(h), act''(h))`` in closed form, or ``None`` for an activation without one.

    ELU, ReLU, LeakyReLU, Tanh and Softplus (``beta=1``). The second derivative
    is ``None`` where it is zero everywhere (ReLU, LeakyReLU: piecewise
    linear). Both are differentiable with respect to ``h``; the second is what
    the written-out backward pass of :class:`_MLPChainLogVolume` needs for the
    gradient through the pre-activations.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> first, second = activation_derivatives(nn.Tanh(), torch.zeros(2))
    >>> first.tolist(), second.tolist()
    ([1.0, 1.0], [-0.0, -0.0])
    """
    if isinstance(act, nn.ELU):
        neg = torch.exp(torch.clamp(h, max=0.0))
        if act.alpha != 1:
            neg = act.alpha * neg
        positive = h > 0
        return neg.masked_fill(positive, 1.0), neg.masked_fill(positive, 0.0)
    if isinstance(act, nn.ReLU):
        return (h > 0).to(h.dtype), None
    if isinstance(act, nn.LeakyReLU):
        return torch.where(h > 0, 1.0, act.negative_slope).to(h.dtype), None
    if isinstance(act, nn.Tanh):
        t = torch.tanh(h)
        first = 1 - t * t
        return first, -2 * t * first
    if isinstance(act, nn.Softplus) and act.beta == 1:
        s = torch.sigmoid(h)
        above = h > act.threshold  # torch's softplus is linear there: derivative 1
        return s.masked_fill(above, 1.0), (s * (1 - s)).masked_fill(above, 0.0)
    return None


def _has_closed_form(act: nn.Module) -> bool:
    closed = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Tanh)
    return isinstance(act, closed) or (isinstance(act, nn.Softplus) and act.beta == 1)


class _ChainStep(NamedTuple):
    """What the backward pass of the chain keeps of hidden layer ``l`` (rows ``n``, width ``w``).

    With ``P_L = W_L``, ``C_l = P_{l+1} diag(a'_l)`` and ``P_l = C_l W_l``.
    """

    prod: torch.Tensor  #: ``P_{l+1}``, shape (n, d, w)
    first: torch.Tensor  #: ``a'_l(h_l)``, shape (n, w)
    scaled: torch.Tensor  #: ``C_l``, shape (n, d, w)


def _chain_forward(acts, weights, hidden, first_product: bool = True):
    """``Df`` of the chain, its :class:`_ChainStep` per hidden layer and the ``a''_l``.

    The steps and second derivatives are listed from the input side (layer 1
    first). With ``first_product=False`` the walk stops at ``C_1``
    (``steps[0].scaled``) without the input-side product ``C_1 W_1``, and
    ``None`` stands for ``Df``.
    """
    n, d = hidden[0].shape[0], weights[-1].shape[0]
    prod = weights[-1].expand(n, -1, -1)  # P_L, (n, d, width)
    steps, second = [], []
    layers = zip(reversed(acts), reversed(weights[:-1]), reversed(hidden))
    for i, (act, weight, h) in enumerate(layers):
        first, sec = activation_derivatives(act, h)
        scaled = prod * first.unsqueeze(1)  # C_l
        steps.append(_ChainStep(prod=prod, first=first, scaled=scaled))
        second.append(sec)
        if i == len(acts) - 1 and not first_product:
            prod = None
        else:
            prod = (scaled.reshape(n * d, -1) @ weight).view(n, d, -1)  # P_l
    # input side first
    return prod, steps[::-1], second[::-1]


def _chain_backward(weights, steps, second, grad, needs):
    """Gradients ``(dW_1, ..., dW_L, dh_1, ..., dh_{L-1})`` from ``grad = dL/dDf``."""
    n, d = grad.shape[0], grad.shape[1]
    flat_g = grad.contiguous().view(n * d, -1)
    grad_w1 = steps[0].scaled.reshape(n * d, -1).T @ flat_g if needs[0] else None
    grad_c1 = (flat_g @ weights[0].T).view(n, d, -1)  # dC_1
    return _chain_backward_from(weights, steps, second, grad_w1, grad_c1, needs)


def _chain_backward_from(weights, steps, second, grad_w1, grad_c1, needs):
    """Gradients ``(dW_1, ..., dW_L, dh_1, ..., dh_{L-1})`` from ``dW_1`` and ``dC_1``.

    For an upstream gradient ``G_1 = dL/dP_1`` the walk goes from the input
    side: ``dW_l = sum_n C_l^T G_l``, ``dC_l = G_l W_l^T``,
    ``G_{l+1} = dC_l diag(a'_l)``, ``dh_l = a''_l * sum_d (dC_l * P_{l+1})``,
    ``dW_L = sum_n G_L``.
    """
    n, d = grad_c1.shape[0], grad_c1.shape[1]
    n_w = len(weights)
    grad_w, grad_h = [grad_w1], []
    grad_scaled = grad_c1  # dC_l
    for layer, (step, sec) in enumerate(zip(steps, second)):
        if sec is not None and needs[n_w + layer]:
            grad_h.append((grad_scaled * step.prod).sum(1).mul_(sec))
        else:
            grad_h.append(None)
        g = grad_scaled.mul_(step.first.unsqueeze(1))  # G_{l+1}
        if layer + 1 < len(steps):
            flat_g = g.view(n * d, -1)
            scaled = steps[layer + 1].scaled  # C_{l+1}
            grad_w.append(scaled.reshape(n * d, -1).T @ flat_g if needs[layer + 1] else None)
            grad_scaled = (flat_g @ weights[layer + 1].T).view(n, d, -1)
    grad_w.append(g.sum(0) if needs[n_w - 1] else None)
    return (*grad_w, *grad_h)


#: The Gram route falls back to forming ``Df`` when the estimated rounding error of a
#: float32 ``log det(C_1 (W_1 W_1^T) C_1^T)`` (:func:`_gram_rounding_error`) exceeds this.
GRAM_MAX_ERROR = 1e-3


def _gram_route(weights, c1):
    """``0.5 log det(C_1 M C_1^T)`` with ``M = W_1 W_1^T``, and what its backward pass needs.

    Returns the value, the Cholesky factor, ``C_1 M`` and whether the route is
    accurate enough: float64, or an estimated rounding error of at most
    :data:`GRAM_MAX_ERROR`.
    """
    n, d, w = c1.shape
    gram_w = weights[0] @ weights[0].T
    c1_m = (c1.reshape(n * d, w) @ gram_w).view(n, d, w)
    gram = c1_m.to(torch.float64) @ c1.to(torch.float64).transpose(-1, -2)
    chol, info = torch.linalg.cholesky_ex(0.5 * (gram + gram.transpose(-1, -2)))
    # one bool leaves the tensors: the only host synchronization of the check (and, under
    # torch.compile, a graph break whose continuation sees a bool, not a varying float)
    accurate = c1.dtype == torch.float64 or bool(
        _gram_rounding_error(c1, gram_w, chol, info) <= GRAM_MAX_ERROR
    )
    return _log_diag(chol, info), chol, c1_m, accurate


def _gram_rounding_error(
    c1: torch.Tensor, gram_w: torch.Tensor, chol: torch.Tensor, info: torch.Tensor
) -> torch.Tensor:
    """An estimate (from above) of the rounding error of ``log det(C M C^T)`` in ``c1``'s dtype.

    Rounding ``C M`` and ``M`` perturbs ``G = C M C^T`` by about
    ``eps |C|_F^2 |M|``, and ``log det G`` by at most ``|G^-1|_F`` times that:
    ``eps |C|_F^2 |M|_inf |G^-1|_F``, the largest over the rows (``inf`` if a
    Cholesky factorization failed), as a float64 scalar tensor. Large when
    ``Df`` is ill-conditioned, and also when ``C`` lies along the small
    singular directions of ``W_1`` (then ``C M C^T`` is a small difference of
    large terms).
    """
    failed = info != 0
    # a failed factor may hold zeros on its diagonal: invert the identity there instead
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device)
    safe = torch.where(failed[:, None, None], eye, chol)
    inv_norm = torch.linalg.matrix_norm(torch.cholesky_inverse(safe))
    c_norm = c1.to(torch.float64).square().sum((1, 2))
    m_norm = gram_w.abs().sum(1).max().to(torch.float64)  # |M|_inf >= |M|_2 (M symmetric)
    error = torch.finfo(c1.dtype).eps * m_norm * c_norm * inv_norm
    return error.masked_fill(failed, torch.inf).max()


class _MLPChainLogVolume(torch.autograd.Function):
    """``0.5 log det(Df Df^T)`` of the MLP chain (``d < D``) in one node.

    ``forward(acts, n_weights, gram, W_1, ..., W_L, h_1, ..., h_{L-1})``.

    Direct route (``gram=False``): the chain ``Df`` of :func:`mlp_jacobian`
    followed by the log-volume of :func:`log_volume` (Gram matrix and
    Cholesky factor in float64, gradient ``(Df Df^T)^-1 Df``); the backward
    pass walks the chain with :func:`_chain_backward`.

    Gram route (``gram=True``): with ``Df = C_1 W_1`` (``C_1``, ``d x w`` per
    row: the chain down to the first hidden layer) and ``M = W_1 W_1^T``
    (``w x w``, once per batch), ``Df Df^T = C_1 M C_1^T``, so the
    ``D``-wide product ``C_1 W_1`` of every row is never formed. For
    ``L = 0.5 log det(C_1 M C_1^T)`` and ``S = (C_1 M C_1^T)^-1`` (times the
    upstream gradient), ``dL/dC_1 = S C_1 M`` and
    ``dL/dW_1 = (sum_n C_1^T S C_1) W_1``; the rest of the backward pass is
    the direct route's. The first layer then costs ``2 w^2 D + 2 n d w^2``
    multiply-adds instead of ``3 n d w D`` (:func:`_gram_is_cheaper`). In
    float32 ``C_1 M C_1^T`` can lose more to rounding than the float64 Gram
    matrix of a float32 ``Df`` (its error grows with ``|C_1|^2 |M| / lambda_min``,
    that of the direct route with ``|Df| / sigma_min``): when the estimate of
    :func:`_gram_rounding_error` exceeds :data:`GRAM_MAX_ERROR`, the batch
    takes the direct route.

    Differentiable once (:func:`skinfo.nn.first_order.first_order_only`).
    """

    @staticmethod
    def forward(ctx, acts, n_weights: int, gram: bool, *tensors: torch.Tensor) -> torch.Tensor:
        weights, hidden = tensors[:n_weights], tensors[n_weights:]
        jac, steps, second = _chain_forward(acts, weights, hidden, first_product=not gram)
        c1 = steps[0].scaled
        c1_m = None
        if gram:
            out, chol, c1_m, accurate = _gram_route(weights, c1)
            if not accurate:  # too ill-conditioned for float32: form Df after all
                gram, c1_m = False, None
                jac = (c1.reshape(-1, c1.shape[-1]) @ weights[0]).view(*c1.shape[:2], -1)
        if not gram:
            out, chol = _wide_log_volume(jac)
        ctx.gram = gram  # the route this batch took
        ctx.second = second  # a''_l per hidden layer (None where it is 0), input side first
        ctx.n_weights, ctx.n_steps = n_weights, len(steps)
        # unpacked by name in _saved_chain: W_1..W_L, the _ChainStep tensors of each
        # hidden layer (input side first), C_1 M (Gram route) or Df (direct route),
        # and the float64 Cholesky factor of Df Df^T
        route = c1_m if gram else jac
        ctx.save_for_backward(*weights, *(t for step in steps for t in step), route, chol)
        return out.to(c1.dtype)

    @staticmethod
    @first_order_only
    def backward(ctx, grad: torch.Tensor):
        saved = _saved_chain(ctx)
        weights, steps, second = saved.weights, saved.steps, ctx.second
        needs = ctx.needs_input_grad[3:]
        if not ctx.gram:
            jac = saved.route  # Df
            grad_jac = _wide_log_volume_grad(jac, saved.chol, grad)
            grads = _chain_backward(weights, steps, second, grad_jac, needs)
        else:
            c1_m = saved.route  # C_1 M
            c1 = steps[0].scaled
            n, d, w = c1.shape
            inv = torch.cholesky_inverse(saved.chol) * grad.to(torch.float64)[:, None, None]
            inv = inv.to(c1.dtype)  # S
            grad_w1 = None
            if needs[0]:
                sum_csc = c1.reshape(n * d, w).T @ (inv @ c1).reshape(n * d, w)
                grad_w1 = sum_csc @ weights[0]
            grad_c1 = inv @ c1_m  # S C_1 M
            grads = _chain_backward_from(weights, steps, second, grad_w1, grad_c1, needs)
        return (None, None, None, *grads)


class _ChainSaved(NamedTuple):
    """The tensors :class:`_MLPChainLogVolume` saves for its backward pass, by name."""

    weights: tuple[torch.Tensor, ...]  #: ``W_1, ..., W_L``
    steps: list[_ChainStep]  #: one per hidden layer, input side first
    route: torch.Tensor  #: ``C_1 M`` on the Gram route, ``Df`` on the direct route
    chol: torch.Tensor  #: float64 Cholesky factor of ``Df Df^T``


def _saved_chain(ctx) -> _ChainSaved:
    """Name the saved tensors of :class:`_MLPChainLogVolume` (the order of its forward)."""
    tensors = ctx.saved_tensors
    n_w, n_flat = ctx.n_weights, 3 * ctx.n_steps
    flat = tensors[n_w : n_w + n_flat]
    steps = [_ChainStep._make(flat[i : i + 3]) for i in range(0, n_flat, 3)]
    route, chol = tensors[n_w + n_flat :]
    return _ChainSaved(weights=tensors[:n_w], steps=steps, route=route, chol=chol)


def _gram_is_cheaper(rows: int, width: int, n_features: int) -> bool:
    """Whether the first layer's Gram route costs fewer multiply-adds than the direct chain.

    ``rows = n d`` Jacobian rows, first hidden layer ``width`` wide, input
    ``n_features`` wide: ``2 w^2 D + 2 n d w^2`` against ``3 n d w D``.
    """
    w, big_d = width, n_features
    return 2 * w * w * big_d + 2 * rows * w * w < 3 * rows * w * big_d


def mlp_jacobian(
    layers: Sequence[nn.Module], hidden: Sequence[torch.Tensor], rows: torch.Tensor
) -> torch.Tensor:
    """Analytic ``Df`` of an MLP at the inputs ``rows`` of the pass that produced ``hidden``.

    ``Df = W_L diag(act'(h_{L-1})) W_{L-1} ... diag(act'(h_1)) W_1``, multiplied
    from the output side, so every intermediate product has only ``d`` rows.
    Returns a tensor of shape ``(len(rows), d, D)``, built from tensor
    operations that autograd differentiates with respect to the weights (and
    the inputs, through ``hidden``).
    """
    linears = layers[0::2]
    acts = layers[1::2]
    jac = linears[-1].weight.expand(len(rows), -1, -1)  # (n, d, width)
    for linear, act, h in zip(
        reversed(linears[:-1]), reversed(acts), reversed(hidden), strict=True
    ):
        scaled = jac * activation_derivative(act, h[rows]).unsqueeze(1)  # (n, d, width)
        jac = (scaled.reshape(-1, scaled.shape[-1]) @ linear.weight).view(
            scaled.shape[0], scaled.shape[1], -1
        )
    return jac


def mlp_log_volume(
    layers: Sequence[nn.Module],
    hidden: Sequence[torch.Tensor],
    rows: torch.Tensor,
    gram: bool | None = None,
) -> torch.Tensor:
    """``log J_f`` of an MLP at the inputs ``rows``, as ``log_volume(mlp_jacobian(...))``.

    When the representation is narrower than the input and the activations
    have closed-form derivatives, the chain and the log-volume are one
    autograd node with a written-out backward pass (:class:`_MLPChainLogVolume`);
    otherwise the two steps. That node forms ``Df``, or for wide inputs only
    ``Df Df^T`` through the first layer's Gram matrix: ``gram=None`` picks
    the route with fewer multiply-adds (:func:`_gram_is_cheaper`),
    ``True``/``False`` ask for one.

    Parameters
    ----------
    layers : sequence of nn.Module
        Alternating ``nn.Linear`` and elementwise activation modules, starting
        and ending with ``nn.Linear``.
    hidden : sequence of tensor
        The pre-activations of the hidden layers from :func:`mlp_forward` on the
        inputs, each of shape (B, width).
    rows : tensor of int
        Indices of the inputs at which to take ``log J_f``.
    gram : bool or None, default=None
        Whether to compute ``Df Df^T`` through the first layer's Gram matrix
        (``True``), from ``Df`` (``False``), or whichever costs less (``None``).

    Returns
    -------
    tensor of shape (len(rows),)
        ``log J_f`` at each selected input, differentiable once with respect
        to the weights and (through ``hidden``) the inputs.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> layers = [nn.Linear(30, 8), nn.Tanh(), nn.Linear(8, 3)]
    >>> x, rows = torch.randn(5, 30), torch.arange(5)
    >>> _, hidden = mlp_forward(layers, x)
    >>> direct = mlp_log_volume(layers, hidden, rows, gram=False)
    >>> bool(torch.allclose(direct, mlp_log_volume(layers, hidden, rows, gram=True), atol=1e-4))
    True
    """
    linears = layers[0::2]
    acts = tuple(layers[1::2])
    d, big_d = linears[-1].weight.shape[0], linears[0].weight.shape[1]
    if acts and d < big_d and all(_has_closed_form(act) for act in acts):
        weights = [linear.weight for linear in linears]
        picked = [h[rows] for h in hidden]
        if gram is None:
            gram = _gram_is_cheaper(len(rows) * d, weights[0].shape[0], big_d)
        return _MLPChainLogVolume.apply(acts, len(weights), gram, *weights, *picked)
    return log_volume(mlp_jacobian(layers, hidden, rows))


def mlp_supports(layers: Sequence[nn.Module]) -> bool:
    """Whether ``layers`` form ``Linear (act Linear)*`` with known elementwise activations."""
    layers = list(layers)
    if not layers or len(layers) % 2 == 0:
        return False
    for i, layer in enumerate(layers):
        if i % 2 == 0 and type(layer) is not nn.Linear:
            return False
        if i % 2 == 1 and not isinstance(layer, _ELEMENTWISE):
            return False
    return True


class MLPChain(nn.Module):
    """A multilayer perceptron ``Linear -> act -> ... -> Linear`` with an analytic Jacobian.

    Parameters
    ----------
    layers : sequence of nn.Module
        Alternating ``nn.Linear`` and elementwise activation modules, starting
        and ending with ``nn.Linear``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = MLPChain([nn.Linear(5, 8), nn.ELU(), nn.Linear(8, 3)])
    >>> x = torch.randn(4, 5)
    >>> bool(torch.allclose(net.jacobian(x), batched_jacobian(net, x), atol=1e-6))
    True
    """

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        if not mlp_supports(layers):
            raise ValueError(
                "MLPChain needs alternating nn.Linear and elementwise activation modules, "
                "starting and ending with nn.Linear."
            )
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(list(self.layers), x)[0]

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``Df(x)`` per row, shape ``(B, d, D)``."""
        _, hidden = mlp_forward(list(self.layers), x)
        return mlp_jacobian(list(self.layers), hidden, torch.arange(len(x), device=x.device))

    def log_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``log J_f(x)`` per row via the analytic chain (:func:`mlp_log_volume`)."""
        _, hidden = mlp_forward(list(self.layers), x)
        return mlp_log_volume(list(self.layers), hidden, torch.arange(len(x), device=x.device))


def mlp_layers(encoder: nn.Module, projection: nn.Linear) -> list[nn.Module] | None:
    """The layers of ``projection(encoder(x))`` as a flat list if it is a plain MLP, else None.

    ``encoder`` qualifies when it is an ``nn.Sequential`` of ``nn.Linear`` and
    elementwise activation modules (e.g. :class:`skinfo.nn.encoders.MLP`) that
    ends with an activation, or is empty.
    """
    if type(encoder) is nn.Identity:
        layers: list[nn.Module] = []
    elif isinstance(encoder, nn.Sequential) and type(encoder).forward is nn.Sequential.forward:
        layers = list(encoder)
    else:
        return None
    layers = [*layers, projection]
    return layers if mlp_supports(layers) else None


__all__ = [
    "MLPChain",
    "activation_derivative",
    "activation_derivatives",
    "batched_jacobian",
    "log_jacobian",
    "log_volume",
    "mlp_forward",
    "mlp_jacobian",
    "mlp_log_volume",
    "mlp_layers",
    "mlp_supports",
]
