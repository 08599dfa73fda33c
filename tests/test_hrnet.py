"""HRNet baselines: exact params / paper-convention FLOPs, analytic == hook counts, structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hrbench.complexity.conventions import get_convention
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError
from hrbench.factory import create_model
from hrbench.models.hrnet import ExchangeBlock
from hrbench.registry import create_config, get_entry

HRNETS = ("small_hrnet_w16", "hrnet_w32", "hrnet_w48")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "k", "hw", "params", "printed"), [
    # architectures.md: Small HRNet-W16 torchstat / 2^20 (published 551.7, 735.5 MFLOPs)
    ("small_hrnet_w16", 17, (256, 192), 1_284_961, 551.67),
    ("small_hrnet_w16", 16, (256, 256), 1_284_944, 735.49),
    # HRNet get_model_summary conv MACs / 2^30 (published 7.1 and 14.6 GFLOPs)
    ("hrnet_w32", 17, (256, 192), 28_536_113, 7.12),
    ("hrnet_w48", 17, (256, 192), 63_595_745, 14.61),
])
def test_published_complexity(name, k, hw, params, printed):
    model = create_model(name, k)
    assert _params(model) == params
    conv = get_convention(get_entry(name).convention)
    divisor = 2**20 if conv.name == "torchstat" else 2**30
    assert round(sum(analytic_counts(model, conv, hw).values()) / divisor, 2) == printed


def test_w32_macs_raw():
    """The raw conv-MAC count behind HRNet-W32's 7.1 GFLOPs (architectures.md: 7.645e9)."""
    counts = analytic_counts(create_model("hrnet_w32"), get_convention("hrnet-summary"), (256, 192))
    assert round(sum(counts.values()) / 1e9, 3) == 7.645


@pytest.mark.parametrize("name", HRNETS)
@pytest.mark.parametrize("hw", [(256, 192), (256, 256)])
def test_analytic_equals_hooks(name, hw):
    model = create_model(name, 16 if hw == (256, 256) else 17)
    extra = () if name == "hrnet_w48" else ("torchstat",)  # the torchstat rules too, where cheap
    for conv_name in {get_entry(name).convention, *extra}:
        conv = get_convention(conv_name)
        assert analytic_counts(model, conv, hw) == hook_counts(model, conv, hw), conv_name


def test_forward_shape_and_official_keys():
    model = create_model("small_hrnet_w16", 17).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 192)).shape == (1, 17, 64, 48)
    keys = set(model.state_dict())
    for key in ("backbone.conv1.weight", "backbone.bn2.running_var", "backbone.layer1.0.downsample.0.weight",
                "backbone.transition1.0.0.weight", "backbone.transition1.1.0.0.weight",
                "backbone.transition3.3.0.0.weight", "backbone.stage4.0.branches.3.1.conv2.weight",
                "backbone.stage4.0.fuse_layers.0.3.0.weight", "backbone.stage3.0.fuse_layers.2.0.1.0.weight",
                "backbone.stage3.0.fuse_layers.2.0.1.1.weight",
                "head.final_layer.bias"):
        assert key in keys, key
    # the last module of the last stage outputs the 1/4 branch only
    assert not any(k.startswith("backbone.stage4.0.fuse_layers.1.") for k in keys)
    assert "backbone.transition2.0.0.weight" not in keys  # unchanged branches pass through


def test_w32_stage_layout():
    model = create_model("hrnet_w32")
    bb = model.backbone
    assert [len(bb.stage2), len(bb.stage3), len(bb.stage4)] == [1, 4, 3]
    assert len(bb.layer1) == 4 and bb.layer1[0].conv3.out_channels == 256
    assert len(bb.stage4[0].fuse_layers) == 4 and len(bb.stage4[2].fuse_layers) == 1
    assert bb.out_channels == 32


def test_fusion_matches_definition():
    """Standard fusion: out_0 = ReLU(x0 + up(BN(conv1x1(x1)))), out_1 = ReLU(BN(conv3x3/2(x0)) + x1)."""
    torch.manual_seed(0)
    mod = ExchangeBlock((4, 8), num_blocks=1).eval()
    x0, x1 = torch.randn(1, 4, 8, 6), torch.randn(1, 8, 4, 3)
    with torch.no_grad():
        b0, b1 = mod.branches[0](x0), mod.branches[1](x1)
        up = mod.fuse_layers[0][1]
        down = mod.fuse_layers[1][0][0]
        want0 = F.relu(b0 + F.interpolate(up[1](up[0](b1)), scale_factor=2, mode="nearest"))
        want1 = F.relu(down[1](down[0](b0)) + b1)
        out0, out1 = mod([x0, x1])
    assert len(down) == 2  # last step of a down path: conv + BN, no ReLU
    torch.testing.assert_close(out0, want0)
    torch.testing.assert_close(out1, want1)


@pytest.mark.parametrize(("override", "param"), [
    ({"widths": (16, 32)}, "widths"), ({"blocks": (2, 2)}, "blocks"), ({"stage1_block": "dense"}, "stage1_block"),
    ({"modules": (1, 0, 1)}, "modules"),
])
def test_bad_config(override, param):
    with pytest.raises(ConfigError, match=param):
        create_config("hrnet_w32", **override)


def test_aliases():
    assert get_entry("w32").name == "hrnet_w32"
    assert get_entry("w48").name == "hrnet_w48"
    assert get_entry("small_w16").name == "small_hrnet_w16"
