"""Shared test set-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The suite's models are small and run at batch 1-16: one intra-op thread is fastest and
    keeps timings steady on the 2-core CI machine (tests that want more set it themselves)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
