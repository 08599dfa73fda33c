"""Batched dynamic kernel aggregation vs a per-sample loop, on Dite-HRNet-18's DKA shapes
(``hrbench bench-dka``).

Times, in one run and on the same inputs, the DKA convolutions of Dite-HRNet-18's DSC layers (one
per resolution branch and split group that has N > 1 kernels, at the given network input) two ways:
the batched grouped convolution of :class:`hrbench.models.dynamic.KernelAggregation` and a reference
that runs one ``F.conv2d`` per sample. Forward and forward+backward, median milliseconds over the
repeats (after 2 warm-up calls, CUDA-synchronised), and the speed-up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from hrbench.bench.timing import median_ms
from hrbench.device import resolve_device
from hrbench.errors import HrbenchError
from hrbench.models.dynamic import DynamicKernelAggregation, per_sample_reference, split_channels

MODES = ("forward", "forward+backward")
WARMUP = 2


def dite18_cases(input_hw: tuple[int, int]) -> list[tuple[str, int, int, int, int, int]]:
    """(label, channels, H, W, kernel size, N) of every DKA in Dite-HRNet-18's DSC layers."""
    from hrbench.models.ditehrnet import DiteHRNetConfig

    cfg = DiteHRNetConfig()
    widths = max(cfg.num_channels, key=len)
    cases = []
    for b, width in enumerate(widths):
        g, n = cfg.groups[b], cfg.kernels[b]
        if n < 2:
            continue
        h, w = input_hw[0] // 4 // 2**b, input_hw[1] // 4 // 2**b
        for i, c in enumerate(split_channels(width // 2, g)):
            cases.append((f"branch {b} group {i}", c, h, w, 2 * i + 3, n))
    return cases


def _per_sample(dka: DynamicKernelAggregation, x: torch.Tensor) -> torch.Tensor:
    """The reference: the same attention, then one ``F.conv2d`` per sample."""
    return per_sample_reference(dka.aggregation, x, dka.attention(x))


def _timed(f: Callable[[], torch.Tensor], mode: str) -> Callable[[], None]:
    """``f`` as a timed step: forward without autograd, or forward + backward of the sum."""
    if mode == "forward":
        def forward() -> None:
            with torch.no_grad():
                f()
        return forward

    def forward_backward() -> None:
        f().sum().backward()
    return forward_backward


def bench_dka(batch: int = 32, input_hw: tuple[int, int] = (256, 192), repeats: int = 10,
              device: str = "cpu") -> dict[str, Any]:
    """Time every case of :func:`dite18_cases` batched and per sample; the settings and one row per
    case and mode (forward / forward+backward) with both medians (ms) and the speed-up."""
    if batch < 2:
        raise HrbenchError(f"invalid --batch {batch}: must be >= 2 (the attention's BatchNorm trains on the batch)")
    if repeats < 1:
        raise HrbenchError(f"invalid --repeats {repeats}: must be a positive integer")
    if input_hw[0] % 32 or input_hw[1] % 32:
        raise HrbenchError(f"invalid --input {input_hw[0]}x{input_hw[1]}: height and width must be multiples of 32 "
                           "(as for the network)")
    dev = resolve_device(device)
    torch.manual_seed(0)
    rows = []
    for label, c, h, w, k, n in dite18_cases(input_hw):
        dka = DynamicKernelAggregation(c, c, k, padding=k // 2, groups=c, num_kernels=n).to(dev)
        x = torch.randn(batch, c, h, w, device=dev, requires_grad=True)
        batched = functools.partial(dka, x)
        looped = functools.partial(_per_sample, dka, x)
        for mode in MODES:
            t_batched = median_ms(_timed(batched, mode), repeats, WARMUP, dev)
            t_loop = median_ms(_timed(looped, mode), repeats, WARMUP, dev)
            rows.append({"case": label, "shape": f"{c}x{h}x{w} k{k} N{n}", "mode": mode,
                         "batched_ms": t_batched, "loop_ms": t_loop, "speedup": t_loop / t_batched})
    return {"input": f"{input_hw[0]}x{input_hw[1]}", "batch": batch, "repeats": repeats, "device": str(dev),
            "threads": torch.get_num_threads(), "rows": rows}
