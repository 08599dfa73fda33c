"""Batched dynamic kernel aggregation vs a per-sample loop, on Dite-HRNet-18's DKA shapes.

``python -m hrbench.benchmarks.dka --batch 32`` times, in one run and on the same inputs, the
DKA convolutions of Dite-HRNet-18's DSC layers (one per resolution branch and split group that
has N > 1 kernels, at the given network input) two ways: the batched grouped convolution of
:class:`hrbench.models.dynamic.KernelAggregation` and a reference that runs one ``F.conv2d`` per
sample. Forward and forward+backward, median milliseconds over the repeats, and the speed-up.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable

import torch

from hrbench.cli.options import parse_input
from hrbench.errors import HrbenchError
from hrbench.models.dynamic import DynamicKernelAggregation, per_sample_reference, split_channels


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


def median_ms(fn: Callable[[], None], repeats: int, warmup: int = 2, device: str = "cpu") -> float:
    """Median wall time of ``fn`` in milliseconds (CUDA work is synchronised before each reading)."""
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


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


def run(batch: int, input_hw: tuple[int, int], repeats: int, device: str = "cpu") -> list[dict]:
    """Time every case; returns one dict per case and mode (forward / forward+backward)."""
    torch.manual_seed(0)
    rows = []
    for label, c, h, w, k, n in dite18_cases(input_hw):
        dka = DynamicKernelAggregation(c, c, k, padding=k // 2, groups=c, num_kernels=n).to(device)
        x = torch.randn(batch, c, h, w, device=device, requires_grad=True)

        batched = functools.partial(dka, x)
        looped = functools.partial(_per_sample, dka, x)

        for mode in ("forward", "forward+backward"):
            t_batched = median_ms(_timed(batched, mode), repeats, device=device)
            t_loop = median_ms(_timed(looped, mode), repeats, device=device)
            rows.append({"case": label, "shape": f"{c}x{h}x{w} k{k} N{n}", "mode": mode,
                         "batched_ms": t_batched, "loop_ms": t_loop, "speedup": t_loop / t_batched})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hrbench.benchmarks.dka", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="samples per batch (default 32)")
    parser.add_argument("--input", default="256x192", help="network input HxW whose branch shapes are used")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per measurement (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    args = parser.parse_args(argv)
    try:
        if args.batch < 1 or args.repeats < 1:
            raise HrbenchError("--batch and --repeats must be >= 1")
        input_hw = parse_input(args.input)
        if input_hw[0] % 32 or input_hw[1] % 32:
            raise HrbenchError(f"--input {args.input}: height and width must be multiples of 32 (as for the network)")
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise HrbenchError(f"--device {args.device}: CUDA is not available here")
        if not (args.device == "cpu" or args.device.startswith("cuda")):
            raise HrbenchError(f"--device must be cpu or cuda[:i], got {args.device!r}")
    except HrbenchError as e:
        print(f"hrbench: error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.batch, input_hw, args.repeats, args.device)
    where = args.device if args.device != "cpu" else f"cpu, {torch.get_num_threads()} threads"
    print(f"DKA, Dite-HRNet-18 DSC shapes at {input_hw[0]}x{input_hw[1]}, batch {args.batch}, "
          f"{where}, median of {args.repeats}")
    print(f"{'case':<18} {'C x H x W, kernel, N':<22} {'mode':<17} {'batched ms':>11} {'loop ms':>9} {'speed-up':>9}")
    for r in rows:
        print(f"{r['case']:<18} {r['shape']:<22} {r['mode']:<17} {r['batched_ms']:>11.2f} {r['loop_ms']:>9.2f} "
              f"{r['speedup']:>8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
