"""Shared test set-up."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hrbench.config import ModelConfig, require


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The suite's models are small and run at batch 1-16: one intra-op thread is fastest and
    keeps timings steady on the 2-core CI machine (tests that want more set it themselves)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cli_error(capsys) -> str:
    """What a refused command printed: exactly one stderr line, ``hrbench: error: ...``."""
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and len(err.strip().splitlines()) == 1, err
    return err


FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def official_fixture(name: str) -> Path:
    """Path of an official-model fixture under ``../shared/fixtures``. A missing fixture skips the
    test on a developer's machine but fails it under ``CI=true`` (CI always has ``shared/``)."""
    path = FIXTURES / name
    if not path.exists():
        message = f"official fixture {path} is absent (shared/ not beside the checkout)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# ------------------------------------------------------------------ a tiny registered model (engine plumbing)
class TinyBackbone(nn.Module):
    """Two stride-2 convolutions with BN: 1/4 resolution, 8 channels."""

    out_channels = 8

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1))

    def forward(self, x):
        return self.body(x)


@dataclasses.dataclass(frozen=True)
class TinyConfig(ModelConfig):
    """A BN-carrying tiny backbone, registered only for these tests (see ``tiny_arch``)."""

    width: int = 8

    def validate(self) -> None:
        require(self.width >= 1, "width", "must be >= 1")

    def build_backbone(self) -> nn.Module:
        return TinyBackbone()


def tiny_recipe(dataset: str, input_hw: tuple[int, int]):
    """The tiny test family's training recipe (the Lite-HRNet numbers, 32/GPU x 8), declared as a family does."""
    from hrbench.registry import Recipe

    return Recipe("test", "tiny test family (Lite-HRNet recipe, 32/GPU x 8)", 210, 32, 8, 2e-3)


@pytest.fixture
def tiny_arch(monkeypatch):
    """Register ``tiny_engine_test`` for one test (removed afterwards: the registry stays clean)."""
    from hrbench import registry

    registry.list_models()  # load the real registry first
    entry = registry.ModelEntry("tiny_engine_test", lambda: TinyConfig(), paper="test", recipe=tiny_recipe)
    monkeypatch.setitem(registry._REGISTRY, "tiny_engine_test", entry)
    return "tiny_engine_test"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from hrbench.data.synth import generate

    root = tmp_path_factory.mktemp("synth") / "coco"
    generate("coco", root, 12, 4, seed=0)
    return root


def official_inplace_fusion(fusion, xs: list[torch.Tensor], relu: nn.Module) -> list[torch.Tensor]:
    """The official Lite-HRNet fusion loop, literally (facts from its code): the running sum aliases
    branch 0 and is updated in place, and output i >= 1 calls ``fusion[i][0]`` twice."""
    xs = [x.clone() for x in xs]
    outs = []
    for i in range(len(fusion)):
        y = xs[0] if i == 0 else fusion[i][0](xs[0])
        for j in range(len(xs)):
            y += xs[j] if i == j else fusion[i][j](xs[j])
        outs.append(relu(y))
    return outs


def torchrun(args: list[str], timeout: float = 420) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` in its own session (killed whole on timeout)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun {' '.join(args[:3])} ... hung for {timeout}s: {err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


#: The files with the longest tests (RTMPose-t's and Lite-HRNet-18's end-to-end runs, the DDP matrix): run
#: first, so that under ``make test``'s two xdist workers (``--dist loadfile``) they overlap the rest.
LONGEST_FIRST = ("test_rtmpose.py", "test_train_e2e.py", "test_ddp.py")


def pytest_collection_modifyitems(config, items):
    """Order the files: :data:`LONGEST_FIRST`, then those holding a slow test, then the rest (each file's
    tests in their own order; the same order in every xdist worker)."""
    slow = {item.path.name for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple[int, int]:
        name = item.path.name
        if name in LONGEST_FIRST:
            return 0, LONGEST_FIRST.index(name)
        return (1 if name in slow else 2), 0

    items.sort(key=rank)
