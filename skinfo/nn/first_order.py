"""A guard for hand-written backward passes that are differentiable once."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch


def first_order_only(backward: Callable) -> Callable:
    """Mark an ``autograd.Function.backward`` as differentiable once, and enforce it.

    Raises a clear ``RuntimeError`` when the backward is asked for a graph
    (``create_graph=True``, i.e. grad mode on inside the backward); otherwise
    the backward runs with grad mode off and builds no graph, as under
    :func:`torch.autograd.function.once_differentiable`. That decorator alone
    errors only when the incoming gradient itself requires grad; with a
    constant incoming gradient the result would silently lack every
    second-order term that flows through the saved tensors. Calling the
    backward directly (grad mode is already off) also skips
    ``once_differentiable``'s own ``no_grad`` block, a few microseconds per
    backward.

    Examples
    --------
    >>> import torch
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     @first_order_only
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> x = torch.tensor(3.0, requires_grad=True)
    >>> torch.autograd.grad(Square.apply(x), x)
    (tensor(6.),)
    >>> try:
    ...     torch.autograd.grad(Square.apply(x), x, create_graph=True)
    ... except RuntimeError as error:
    ...     print(str(error).split(":")[0])
    SquareBackward is differentiable once
    """

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(
                f"{type(ctx).__name__} is differentiable once: its hand-written backward "
                "builds no graph, so second derivatives through it (create_graph=True) "
                "are not available."
            )
        return backward(ctx, *grads)  # grad mode is off: no graph is built

    return wrapper
