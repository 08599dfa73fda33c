"""Training-step time on a shared CPU: torch's default thread count vs ``--threads auto``.

``python -m hrbench.benchmarks.threads [--arch lite18 --input 128x96 --batch 16 --steps 6 --busy 1]``
starts ``--busy`` CPU-bound background processes (the "other job" of a shared machine), then
times training steps of the same model and batch with (a) one intra-op thread per core, torch's
default and hrbench's behaviour before ``--threads``, and (b) :func:`hrbench.threads.default_threads`,
in alternation, under the same load; then once more with the machine otherwise idle. Prints the
median step time of each and the ratio (see :mod:`hrbench.threads` for the cause).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import time

import torch
import typer

from hrbench.engine.trainer import joints_mse_loss
from hrbench.registry import create_model
from hrbench.threads import default_threads, usable_cpus


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _step_times(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, threads: int, steps: int) -> list[float]:
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    w = torch.ones(x.shape[0], t.shape[1], 1)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and is dropped
        t0 = time.perf_counter()
        loss = joints_mse_loss(model(x), t, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def measure(arch: str = "lite18", input_hw: tuple[int, int] = (128, 96), batch: int = 16, steps: int = 6,
            busy: int = 1, rounds: int = 2) -> dict:
    """Median training-step seconds with torch's default threads and with the ``auto`` default,
    under ``busy`` background spinners, and idle."""
    torch.manual_seed(0)
    model = create_model(arch, num_keypoints=17).train()
    x = torch.randn(batch, 3, *input_hw)
    t = torch.rand(batch, 17, input_hw[0] // 4, input_hw[1] // 4)
    default = usable_cpus()
    result: dict = {"arch": arch, "input": f"{input_hw[0]}x{input_hw[1]}", "batch": batch, "cpus": default}
    for label, n_busy in (("loaded", busy), ("idle", 0)):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n_busy)]
        for p in spinners:
            p.start()
        try:
            time.sleep(1.5 if n_busy else 0.0)  # let the load show in /proc/loadavg's running count
            auto, why = default_threads()
            before: list[float] = []
            after: list[float] = []
            for _ in range(rounds):
                before += _step_times(model, x, t, default, steps)
                after += _step_times(model, x, t, auto, steps)
        finally:
            stop.set()
            for p in spinners:
                p.join()
        b, a = statistics.median(before), statistics.median(after)
        result[label] = {"busy_processes": n_busy, "before_threads": default, "auto_threads": auto, "auto_why": why,
                         "before_step_s": b, "auto_step_s": a, "speedup": b / a}
    return result


def main(arch: str = typer.Option("lite18", "--arch"), input_size: str = typer.Option("128x96", "--input"),
         batch: int = typer.Option(16, "--batch"), steps: int = typer.Option(6, "--steps"),
         busy: int = typer.Option(1, "--busy", help="CPU-bound background processes"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    h, w = (int(v) for v in input_size.lower().split("x"))
    r = measure(arch, (h, w), batch, steps, busy)
    if as_json:
        print(json.dumps(r, indent=1))
        return
    for label in ("loaded", "idle"):
        m = r[label]
        print(f"{r['arch']} {r['input']} batch {r['batch']}, {label} ({m['busy_processes']} busy process(es)): "
              f"{m['before_threads']} threads {m['before_step_s']:.2f} s/step, auto = {m['auto_threads']} "
              f"({m['auto_why']}) {m['auto_step_s']:.2f} s/step: {m['speedup']:.2f}x")


if __name__ == "__main__":
    typer.run(main)
