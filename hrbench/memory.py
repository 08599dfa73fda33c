"""Will one step fit? The memory a training or evaluation step needs, estimated before any work, against
what the device has (``--input 8192x8192`` is otherwise killed by the OOM killer minutes later, at 23 GB).

The estimate is a *lower bound* built from what is measured on the model itself at a small input
(a probe: batch 2, the input halved down to about 128 x 128, sides multiples of 32) and scaled
by pixels and batch — activation sizes of these fully convolutional nets are proportional to H x W:

- training: the bytes autograd saves for the backward pass (``saved_tensors_hooks``, each storage
  once, parameters excluded) + weights, gradients and two Adam moments (4 x the parameter bytes) +
  with EMA (``ema``) the averaged copy (parameters and buffers) + the input and target batches the
  loader holds (two prefetched batches per worker);
- evaluation: the largest input + output of any one module call (both exist at once) + the weights.

What it leaves out (the allocator's slack, the backward pass's transient gradients, cuDNN workspaces,
the flip-test copy) only adds to the real peak, so a refusal is never wrong about the step not
fitting; a step that passes may still need more (tests/test_input_safety.py compares the estimate
with the measured peak of a real step).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hrbench.errors import ConfigError, HrbenchError

#: The probe input is scaled down to about this many pixels (sides multiples of 32).
PROBE_PIXELS = 128 * 128
GIB = 2 ** 30


@dataclass(frozen=True)
class StepMemory:
    """Lower bound of one step's memory, in bytes, and its parts."""

    activations: int
    weights: int
    data: int
    probe_hw: tuple[int, int]

    @property
    def total(self) -> int:
        return self.activations + self.weights + self.data


def probe_size(input_hw: tuple[int, int], multiple: int = 32) -> tuple[int, int]:
    """The probe input: ``input_hw`` halved while it has more than :data:`PROBE_PIXELS` pixels and both
    halves stay multiples of ``multiple`` (32: every net here takes those but the stacked hourglass, 64;
    the aspect is kept exactly); still over 4 x :data:`PROBE_PIXELS`: scaled to about :data:`PROBE_PIXELS`,
    sides rounded to multiples of ``multiple``."""
    h, w = input_hw
    while h * w > PROBE_PIXELS and h % (2 * multiple) == 0 and w % (2 * multiple) == 0:
        h, w = h // 2, w // 2
    if h * w <= 4 * PROBE_PIXELS:
        return h, w
    f = math.sqrt(h * w / PROBE_PIXELS)
    return max(multiple, round(h / f / multiple) * multiple), max(multiple, round(w / f / multiple) * multiple)


def _probe_multiple(model: nn.Module) -> int:
    """The first of 32, 64, ..., 512 that ``model.check_input_size`` accepts as both sides; 32 for a model
    without the check or one that takes none of them (its own forward then names the problem)."""
    check = getattr(model, "check_input_size", None)
    for multiple in (32, 64, 128, 256, 512):
        if check is None:
            break
        try:
            check(multiple, multiple)
        except HrbenchError:
            continue
        return multiple
    return 32


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors one training forward saves for backward (each storage once, weights not)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


def _largest_call_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """The largest input + output bytes of one leaf-module call in an evaluation forward."""
    largest = 0

    def hook(module, args, out) -> None:
        nonlocal largest
        tensors = [a for a in args if isinstance(a, torch.Tensor)] + ([out] if isinstance(out, torch.Tensor) else [])
        largest = max(largest, sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return largest


def estimate_step(model: nn.Module, input_hw: tuple[int, int], batch: int, *, train: bool,
                  keypoints: int = 17, workers: int = 0, ema: bool = False) -> StepMemory:
    """:class:`StepMemory` of one step of ``model`` at ``input_hw`` x ``batch`` (module docstring). The
    probe runs on a copy on the CPU, so the model (its BN statistics, its device) is left as it was."""
    probe = probe_size(input_hw, _probe_multiple(model))
    net = copy.deepcopy(model).cpu().train(train)
    x = torch.zeros(2, 3, *probe, requires_grad=False)
    per_sample = (_saved_bytes(net, x) if train else _largest_call_bytes(net, x)) / 2
    pixels = input_hw[0] * input_hw[1] / (probe[0] * probe[1])
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    sample_bytes = 4 * (3 * input_hw[0] * input_hw[1] + keypoints * (input_hw[0] // 4) * (input_hw[1] // 4))
    data = sample_bytes * batch * (2 * max(1, workers) + 1 if train else 1)
    ema_bytes = param_bytes + sum(b.numel() * b.element_size() for b in model.buffers()) if train and ema else 0
    return StepMemory(int(per_sample * pixels * batch), param_bytes * (4 if train else 1) + ema_bytes, data, probe)


def _cgroup_dirs() -> list[Path]:
    """Where this process's cgroup memory files may be: its own cgroup v2 folder (``/proc/self/cgroup``),
    the mount root (inside a container), the v1 memory controller."""
    dirs = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                dirs.append(Path("/sys/fs/cgroup") / line[3:].strip().lstrip("/"))
    except OSError:
        pass
    return dirs + [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")]


def _cgroup_free() -> tuple[int, str] | None:
    """(limit - usage, where) of this process's cgroup memory limit (v2, else v1); None without one."""
    for folder in _cgroup_dirs():
        for limit, usage in (("memory.max", "memory.current"), ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            try:
                text = (folder / limit).read_text().strip()
                if text != "max" and int(text) < 2 ** 60:
                    return max(0, int(text) - int((folder / usage).read_text().strip())), "cgroup limit"
            except (OSError, ValueError):
                continue
    return None


def available_bytes(device: torch.device) -> tuple[int, str] | None:
    """(bytes this process can still allocate on ``device``, where the figure comes from): CUDA:
    ``torch.cuda.mem_get_info`` (free); CPU: ``MemAvailable`` of ``/proc/meminfo``, capped by the cgroup
    limit. None where neither can be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {device}"
    found: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "MemAvailable"))
    except (OSError, ValueError, IndexError):
        pass
    cg = _cgroup_free()
    if cg is not None:
        found.append(cg)
    return min(found) if found else None


def check_step_memory(model: nn.Module, input_hw: tuple[int, int], batch: int, device: torch.device, *,
                      train: bool, keypoints: int = 17, workers: int = 0, ema: bool = False) -> StepMemory:
    """Refuse (one-line :class:`ConfigError` with both figures) a step whose lower-bound memory
    (:func:`estimate_step`) exceeds what ``device`` has; on the CPU the ranks of this node
    (``LOCAL_WORLD_SIZE``) share it. Returns the estimate."""
    est = estimate_step(model, input_hw, batch, train=train, keypoints=keypoints, workers=workers, ema=ema)
    have = available_bytes(device)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1) if device.type == "cpu" else 1
    need = est.total * max(1, local)
    if have is not None and need > have[0]:
        what = "training" if train else "evaluation"
        ranks = f" x {local} processes" if local > 1 else ""
        raise ConfigError(f"--input {input_hw[0]}x{input_hw[1]} with batch {batch}: one {what} step needs at "
                          f"least {need / GIB:.1f} GiB{ranks} (activations {est.activations / GIB:.1f} GiB), but "
                          f"{device} has {have[0] / GIB:.1f} GiB available ({have[1]}); use a smaller --input "
                          "or --batch")
    return est
