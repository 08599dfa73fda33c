"""Repeated BatchNorm statistics updates from one forward (Lite-HRNet Sec. 3.1 fusion, as run officially).

The official Lite-HRNet / Dite-HRNet fusion loop runs the path from branch 0 to each lower output
twice on the same tensor (see :class:`hrbench.models.hr_modules.MultiResolutionFusion`); its
BatchNorms update their running statistics twice per training forward with identical batch
statistics. :func:`repeated_bn_updates` reproduces those statistics while the path runs once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def repeated_update_factor(momentum: float | None, tracked: int, times: int) -> float:
    """The running-statistics factor of ``times`` BatchNorm updates with one batch's statistics.

    One update is ``r <- (1 - f) r + f s`` (mean, and unbiased variance alike); ``times`` updates
    with the same ``s`` are one with ``1 - prod_k (1 - f_k)``: ``1 - (1 - m)^times`` for a fixed
    momentum ``m``; for ``momentum=None`` (cumulative average, ``f_k = 1 / (tracked + k)``)
    the product telescopes to ``tracked / (tracked + times)``, so the factor is ``times / (tracked + times)``.
    """
    if momentum is None:
        return times / (tracked + times)
    return 1.0 - (1.0 - momentum) ** times


@contextmanager
def repeated_bn_updates(path: nn.Module, times: int) -> Iterator[None]:
    """Within this context one training forward of ``path`` updates the running statistics of
    each of its (training-mode, tracking) BatchNorms as ``times`` forwards on the same input
    would: the factor of :func:`repeated_update_factor` and ``num_batches_tracked += times``.
    Forward outputs are unchanged (training-mode BN normalises with the batch statistics).
    Momenta are restored on exit; the modules stay plain BatchNorms (same keys, same counters,
    SyncBatchNorm conversion keeps working). A ``path`` in eval mode is passed over without looking
    at its modules (nothing to update: its BatchNorms are taken to be in eval mode with it)."""
    if times <= 1 or not path.training:
        yield
        return
    saved: list[tuple[_BatchNorm, float | None]] = []
    try:
        for bn in path.modules():
            if isinstance(bn, _BatchNorm) and bn.training and bn.track_running_stats:
                tracked = int(bn.num_batches_tracked) if bn.momentum is None else 0  # sync only as torch's own
                saved.append((bn, bn.momentum))
                bn.momentum = repeated_update_factor(bn.momentum, tracked, times)
        yield
        for bn, _ in saved:
            bn.num_batches_tracked.add_(times - 1)  # the forward added one (only after a successful forward)
    finally:
        for bn, momentum in saved:
            bn.momentum = momentum
