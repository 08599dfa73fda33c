"""Benchmarks behind the ``hrbench bench*`` commands, one module each: :mod:`~hrbench.bench.latency`
(``bench``: forward latency per execution mode), :mod:`~hrbench.bench.data` (``bench-data``: training
data-loader throughput), :mod:`~hrbench.bench.dka` (``bench-dka``: batched vs per-sample dynamic
kernels) and :mod:`~hrbench.bench.threads` (``bench-threads``: training steps on a shared CPU); the
timing they share is :mod:`~hrbench.bench.timing`."""
