"""Shared test set-up."""

from __future__ import annotations

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
