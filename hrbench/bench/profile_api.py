"""``hrbench profile``'s Python API: one registered model profiled in one mode, several side by side,
and which of MACs, bytes moved or kernel launches predicts their latency on this machine (issue 23)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hrbench.bench.latency import load_stamp
from hrbench.bench.profile import measure_peaks, profile_eager
from hrbench.errors import HrbenchError
from hrbench.threads import busy_cpus

PROFILE_MODES = ("eager", "ort")
#: The predictors of the latency fit, in the order of its coefficients.
PREDICTORS = ("launches", "bytes", "macs")
#: ``--compare`` without names: the issue's five models (Lite-/Dite-HRNet-18, HRNet-W32, MobileNetV2,
#: ShuffleNetV2), then the registry's other families and sizes.
COMPARE_DEFAULT = ("litehrnet_18", "ditehrnet_18", "hrnet_w32", "mobilenetv2_1x", "shufflenetv2_1x", "litehrnet_30",
                   "ditehrnet_30", "small_hrnet_w16", "dpn4_32", "dpn4_64", "mobilenetv3_1x", "rtmpose_t", "rtmpose_s")


def profile_model(model: torch.nn.Module, arch: str, mode: str = "eager", input_hw: tuple[int, int] = (256, 192),
                  batch: int = 1, device: str = "cpu", iters: int = 10, warmup: int = 3,
                  peaks: bool = True, clock: str = "auto") -> dict[str, Any]:
    """Profile an already-built ``model`` (:func:`hrbench.bench.profile.profile_eager` or
    :func:`hrbench.bench.profile_ort.profile_ort`), stamped with the machine's load, thread count
    and (``peaks``) its measured matmul / copy peaks. ``clock``: ``cpu``, ``wall`` or ``auto`` (CUDA:
    wall, i.e. device time; CPU: this process's CPU time, which other processes do not inflate)."""
    if mode not in PROFILE_MODES:
        raise HrbenchError(f"unknown --mode {mode!r}: choose from {', '.join(PROFILE_MODES)}")
    if batch < 1:
        raise HrbenchError(f"invalid --batch {batch}: must be a positive integer")
    dev = torch.device(device)
    if mode == "ort" and dev.type != "cpu":
        raise HrbenchError("--mode ort runs ONNX Runtime's CPU execution provider: use --device cpu")
    if clock == "auto":
        clock = "wall" if dev.type == "cuda" else "cpu"
    before = busy_cpus()
    if mode == "eager":
        res = profile_eager(model, input_hw, batch, dev, iters, warmup, clock)
    else:
        from hrbench.bench.profile_ort import profile_ort

        res = profile_ort(model, input_hw, batch, torch.get_num_threads(), iters, warmup, clock)
    load = load_stamp(before, busy_cpus())
    head = {"arch": arch, "mode": mode, "device": dev.type, "input": f"{input_hw[0]}x{input_hw[1]}",
            "batch": batch, "threads": torch.get_num_threads(), "iters": iters, "warmup": warmup, "load": load}
    if peaks:
        head["peaks"] = measure_peaks(dev, res["clock"])
    totals = res["groups"]["stage"]
    head["total"] = {k: sum(r[k] for r in totals) for k in ("macs", "launches", "bytes")}
    return {**head, **res}


def profile(arch: str, mode: str = "eager", input_hw: tuple[int, int] = (256, 192), num_keypoints: int = 17,
            overrides: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`profile_model` of a freshly built registered ``arch`` (seeded weights)."""
    from hrbench.factory import create_model
    from hrbench.registry import resolve

    name = resolve(arch)
    torch.manual_seed(0)
    model = create_model(name, num_keypoints=num_keypoints, **(overrides or {}))
    return profile_model(model, name, mode, input_hw, **kwargs)


def fit_latency(models: Sequence[dict[str, Any]], predictors: Sequence[str] = PREDICTORS) -> dict[str, Any]:
    """Least squares ``t ≈ Σ coef_p · p`` (no intercept) over ``models`` (dicts with ``e2e_ms`` and
    each predictor), with each model's relative error in the fit and left out of it (leave-one-out)."""
    names = [m["arch"] for m in models]
    x = np.array([[float(m[p]) for p in predictors] for m in models])
    y = np.array([float(m["e2e_ms"]) for m in models])
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef = np.linalg.lstsq(x / scale, y, rcond=None)[0] / scale
    fitted = x @ coef
    loo = []
    for i in range(len(y)):
        keep = [j for j in range(len(y)) if j != i]
        c = np.linalg.lstsq(x[keep] / scale, y[keep], rcond=None)[0] / scale if len(keep) >= len(predictors) \
            else None
        loo.append(None if c is None else float(x[i] @ c))
    per_model = [{"arch": n, "measured_ms": round(float(t), 3), "fit_ms": round(float(f), 3),
                  "fit_error": round(float(f / t - 1), 4),
                  "loo_ms": None if lo is None else round(lo, 3),
                  "loo_error": None if lo is None else round(lo / float(t) - 1, 4)}
                 for n, t, f, lo in zip(names, y, fitted, loo, strict=True)]
    loo_errors = [abs(r["loo_error"]) for r in per_model if r["loo_error"] is not None]
    return {"predictors": list(predictors), "coef": {p: float(c) for p, c in zip(predictors, coef, strict=True)},
            "models": per_model,
            "mean_abs_fit_error": round(float(np.mean([abs(r["fit_error"]) for r in per_model])), 4),
            "mean_abs_loo_error": round(float(np.mean(loo_errors)), 4) if loo_errors else None}


def compare(archs: Sequence[str], mode: str = "eager", input_hw: tuple[int, int] = (256, 192), iters: int = 10,
            warmup: int = 2, progress=None, **kwargs: Any) -> dict[str, Any]:
    """Profile each of ``archs`` in one run (peaks measured once), their MACs and latency ratios to the
    first, and :func:`fit_latency` with every non-empty subset of :data:`PREDICTORS`."""
    if len(archs) < 2:
        raise HrbenchError("--compare needs at least two architectures, e.g. --compare lite18,hrnet_w32")
    profiles = []
    for i, arch in enumerate(archs):
        if progress is not None:
            progress(i, len(archs), arch)
        profiles.append(profile(arch, mode, input_hw, iters=iters, warmup=warmup, peaks=False, **kwargs))
    first = profiles[0]
    summary = []
    for p in profiles:
        summary.append({"arch": p["arch"], "e2e_ms": p["e2e_ms"], "e2e_wall_ms": p["e2e_wall_ms"],
                        "clock": p["clock"], "macs": p["total"]["macs"],
                        "bytes": p["total"]["bytes"], "launches": p["total"]["launches"],
                        "macs_ratio": round(p["total"]["macs"] / first["total"]["macs"], 4),
                        "latency_ratio": round(p["e2e_ms"] / first["e2e_ms"], 4),
                        "sum_vs_e2e": p["sum_vs_e2e"], "other_share": p["load"]["other_share"],
                        "busy": p["load"]["busy"]})
    fits = [fit_latency(summary, combo) for r in range(1, len(PREDICTORS) + 1)
            for combo in itertools.combinations(PREDICTORS, r) if len(summary) > len(combo)]
    best = min(fits, key=lambda f: (f["mean_abs_loo_error"] if f["mean_abs_loo_error"] is not None else 1e9))
    return {"mode": mode, "input": f"{input_hw[0]}x{input_hw[1]}", "threads": torch.get_num_threads(),
            "iters": iters, "models": summary, "fits": fits, "best": best["predictors"],
            "clock": first["clock"], "peaks": measure_peaks(torch.device(kwargs.get("device", "cpu")), first["clock"]),
            "profiles": profiles}
