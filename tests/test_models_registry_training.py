"""One training step of every registered model: the guard that DistributedDataParallel works.

DDP (default ``find_unused_parameters=False``) waits for a gradient of every parameter with
``requires_grad``; one that never gets one makes the next step fail. So after one backward every
trainable parameter must have a gradient, and the only frozen ones are the documented dead
parameters: the mask convolution of DCM's lowest branch (Dite-HRNet Sec. 3.2), built and
counted as in the official code but never called.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from hrbench.factory import create_model
from hrbench.models.context import DenseContextModeling
from hrbench.registry import create_config, list_models

HW = (64, 64)  # a multiple of 32: every lower branch halves exactly in the 4-branch nets


@functools.cache
def one_step(name: str) -> dict[str, set[str]]:
    """Parameter names of ``name`` after one training forward (batch 2, 64x64) and backward:
    ``no_grad`` (trainable without gradient), ``frozen``, ``dead`` (documented) and ``frozen_with_grad``."""
    torch.manual_seed(0)
    sized = {"input_size": HW} if "input_size" in create_config(name).to_dict() else {}  # RTMPose's head
    model = create_model(name, num_keypoints=4, **sized).train()
    out = model(torch.randn(2, 3, *HW))  # a tensor, or several (every stack of the hourglass, CPN's training outputs)
    sum(t.square().mean() for t in torch.utils._pytree.tree_leaves(out)).backward()
    params = dict(model.named_parameters())
    return {
        "no_grad": {n for n, p in params.items() if p.requires_grad and p.grad is None},
        "frozen": {n for n, p in params.items() if not p.requires_grad},
        "dead": documented_dead(model),
        "frozen_with_grad": {n for n, p in params.items() if not p.requires_grad and p.grad is not None},
    }


def documented_dead(model: nn.Module) -> set[str]:
    ids = {id(p) for m in model.modules() if isinstance(m, DenseContextModeling) for p in m.conv_mask[-1].parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("name", list_models())
def test_every_trainable_parameter_gets_a_gradient(name: str):
    missing = sorted(one_step(name)["no_grad"])
    assert missing == [], f"{name}: {len(missing)} trainable parameters without gradient, e.g. {missing[:3]}"


@pytest.mark.parametrize("name", list_models())
def test_frozen_parameters_are_exactly_the_documented_dead_ones(name: str):
    step = one_step(name)
    assert step["frozen"] == step["dead"]
    assert all(".conv_mask." in n for n in step["frozen"]) and not step["frozen_with_grad"]


# DMC blocks = sum(num_modules) * 2 blocks, one DCM each with a dead 1x1 conv (weight + bias):
# Dite-18 and the Table 6 ACM variants (2+4+2)*2 = 16 -> 32 tensors, Dite-30 (3+8+3)*2 = 28 -> 56
DEAD_TENSORS = {"ditehrnet_18": 32, "ditehrnet_30": 56, "litehrnet_18_acm": 32, "litehrnet_18_acm_dsc": 32}


def test_dead_tensor_counts_by_hand():
    for name in list_models():
        assert len(one_step(name)["dead"]) == DEAD_TENSORS.get(name, 0), name


def test_dead_parameters_stay_in_checkpoints_and_counts():
    model = create_model("ditehrnet_18")
    dcm = model.backbone.stage0[0].layers[0].dcm
    # lowest branch of stage 0: 80 channels -> 40 split channels -> a 40 -> 1 conv with bias
    assert [p.numel() for p in dcm.conv_mask[-1].parameters()] == [40, 1]
    assert "backbone.stage0.0.layers.0.dcm.conv_mask.1.weight" in model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 1_186_933  # official #Params incl. the dead ones
    dcm.train()
    xs = [torch.randn(2, 20, 16, 16), torch.randn(2, 40, 8, 8)]
    dcm(xs)[0].sum().backward()
    assert all(p.grad is None for p in dcm.conv_mask[-1].parameters())
    assert all(p.grad is not None for p in dcm.conv_mask[0].parameters())
