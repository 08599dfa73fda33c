"""Shape arithmetic for the models' ``walk(w, *shapes)`` methods (the analytic counter of
:mod:`hrbench.complexity.walker` calls them instead of running a forward pass)."""

from __future__ import annotations

Shape = tuple[int, ...]


def conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution along one axis: input ``size``, kernel ``k``, stride ``s``,
    padding ``p``, dilation ``d`` (the ``torch.nn.Conv2d`` formula)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def require_multiple(h: int, w: int, multiple: int, why: str) -> None:
    """One-line :class:`~hrbench.errors.HrbenchError` unless ``h`` and ``w`` are multiples of ``multiple``."""
    from hrbench.errors import HrbenchError

    if h % multiple or w % multiple:
        raise HrbenchError(f"input {h}x{w} does not fit this network: height and width must be multiples of "
                           f"{multiple} ({why})")
