"""Latency benchmarks (``hrbench bench``): eager, channels-last, bf16 autocast, torch.compile."""

from hrbench.bench.latency import MODES, BenchResult, ModeResult, benchmark, benchmark_model

__all__ = ["MODES", "BenchResult", "ModeResult", "benchmark", "benchmark_model"]
