"""Training-mode BatchNorm statistics of the Lite-/Dite-HRNet fusion equal the official model's.

The official fusion loop (Lite-HRNet ``LiteHRModule.forward``, Dite-HRNet's copy of it) starts
output i >= 1 with ``fuse_layers[i][0](out[0])`` and adds ``fuse_layers[i][0](out[0])`` again in
its j loop: the path from branch 0 runs twice on the same tensor, so each of its BatchNorms makes
two running-statistics updates with the same batch statistics per training forward. hrbench runs
the path once; these tests pin the buffers against values computed here by hand.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import official_inplace_fusion
from torch import nn

from hrbench.factory import create_model
from hrbench.models.bn_updates import repeated_bn_updates, repeated_update_factor
from hrbench.models.hr_modules import MultiResolutionFusion

HW = (64, 64)


class OfficialFusion(MultiResolutionFusion):
    def forward(self, xs, relu):
        return official_inplace_fusion(self, xs, relu)


def with_official_fusion(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if type(m) is MultiResolutionFusion:
            m.__class__ = OfficialFusion
    return twin


def batch_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and unbiased variance, in float64."""
    x = x.double()
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=True)


def record_inputs(bn: nn.Module, store: list) -> torch.utils.hooks.RemovableHandle:
    return bn.register_forward_hook(lambda m, inp, out: store.append(inp[0].detach().clone()))


def test_update_factor_by_hand():
    assert repeated_update_factor(0.1, 0, 2) == pytest.approx(0.19)  # 1 - 0.9^2
    assert repeated_update_factor(0.1, 7, 1) == pytest.approx(0.1)
    assert repeated_update_factor(0.5, 0, 3) == pytest.approx(0.875)  # 1 - 0.5^3
    # cumulative average: after n batches, two more equal ones weigh 2/(n+2)
    assert repeated_update_factor(None, 0, 2) == pytest.approx(1.0)
    assert repeated_update_factor(None, 3, 2) == pytest.approx(0.4)


# BN paths relative to ``backbone.stage1.0.fuse_layers`` (3 branches): i.0.* are the twice-run paths
AFFECTED = ("1.0.0.1", "1.0.0.3", "2.0.0.1", "2.0.0.3", "2.0.1.1", "2.0.1.3")
UNAFFECTED = ("0.1.1", "0.2.1", "1.2.1", "2.1.0.1", "2.1.0.3")


@pytest.mark.parametrize("name", ["litehrnet_18", "ditehrnet_18"])
def test_affected_and_other_batchnorms_by_hand(name: str):
    torch.manual_seed(0)
    model = create_model(name, num_keypoints=4).train()
    fuse = model.backbone.stage1[0].fuse_layers
    bns = {k: fuse.get_submodule(k) for k in AFFECTED + UNAFFECTED}
    assert all(isinstance(bn, nn.BatchNorm2d) and bn.momentum == 0.1 for bn in bns.values())
    seen = {k: [] for k in bns}
    handles = [record_inputs(bn, seen[k]) for k, bn in bns.items()]
    batches = [torch.randn(2, 3, *HW), torch.randn(2, 3, *HW)]
    expect = {k: (torch.zeros(bn.num_features, dtype=torch.float64), torch.ones(bn.num_features, dtype=torch.float64))
              for k, bn in bns.items()}
    for step, x in enumerate(batches, start=1):
        model(x)
        for k, bn in bns.items():
            assert len(seen[k]) == step  # every path is computed once per forward
            mean, var = batch_stats(seen[k][-1])
            f = 0.19 if k in AFFECTED else 0.1  # two updates: 1 - 0.9^2; one update: 0.1
            rm, rv = expect[k]
            expect[k] = ((1 - f) * rm + f * mean, (1 - f) * rv + f * var)
            torch.testing.assert_close(bn.running_mean.double(), expect[k][0], rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(bn.running_var.double(), expect[k][1], rtol=1e-5, atol=1e-7)
            assert int(bn.num_batches_tracked) == (2 if k in AFFECTED else 1) * step, k
            assert bn.momentum == 0.1  # restored after the forward
    for h in handles:
        h.remove()


@pytest.mark.parametrize("name", ["litehrnet_18", "ditehrnet_18", "naive_litehrnet_18", "litehrnet_18_acm_dsc"])
def test_every_buffer_equals_the_official_double_call(name: str):
    torch.manual_seed(1)
    ours = create_model(name, num_keypoints=4).train()
    official = with_official_fusion(ours)
    for _ in range(2):
        x = torch.randn(2, 3, *HW)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), official(x), rtol=0, atol=0)
    theirs = dict(official.named_buffers())
    n_twice = 0
    for key, buf in ours.named_buffers():
        if key.endswith("num_batches_tracked"):
            assert int(buf) == int(theirs[key]), key
            n_twice += int(buf) == 4
        else:
            torch.testing.assert_close(buf, theirs[key], rtol=2e-6, atol=1e-7, msg=key)
    # 3-stage nets with (2, 3, 4) branches and (2, 4, 2) modules: 2*2 + 4*6 + 2*12 twice-run BNs (Lite-18 layout)
    assert n_twice == 52


def test_cumulative_average_momentum_none_by_hand():
    """momentum=None: the official double call averages each batch in twice."""
    torch.manual_seed(2)
    chans = (4, 8)
    fusion = MultiResolutionFusion(chans).train()
    bn = fusion[1][0][0][3]  # the last BN of the 0 -> 1 path
    bn.momentum = None
    seen: list = []
    record_inputs(bn, seen)
    stats = []
    for _ in range(2):
        xs = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
        fusion(xs, nn.ReLU())
        stats.append(batch_stats(seen[-1]))
    (m1, v1), (m2, v2) = stats
    # four updates with batches (1, 1, 2, 2): the plain mean of the four
    torch.testing.assert_close(bn.running_mean.double(), (m1 + m2) / 2, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(bn.running_var.double(), (v1 + v2) / 2, rtol=1e-5, atol=1e-7)
    assert int(bn.num_batches_tracked) == 4 and bn.momentum is None


def test_eval_mode_and_frozen_batchnorms_are_untouched():
    fusion = MultiResolutionFusion((4, 8)).eval()
    xs = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    fusion(xs, nn.ReLU())
    assert all(int(b) == 0 for k, b in fusion.named_buffers() if k.endswith("num_batches_tracked"))
    fusion.train()
    bn = fusion[1][0][0][1]
    bn.eval()  # e.g. norm_eval: running statistics frozen
    fusion(xs, nn.ReLU())
    assert int(bn.num_batches_tracked) == 0 and torch.equal(bn.running_mean, torch.zeros(4))


def test_momentum_restored_when_the_forward_fails():
    path = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(5, 1, 1)).train()  # the conv rejects 3 channels
    with pytest.raises(RuntimeError), repeated_bn_updates(path, 2):
        path(torch.randn(2, 3, 4, 4))
    assert path[0].momentum == 0.1 and int(path[0].num_batches_tracked) == 1  # BN ran once, no extra count


def test_state_dict_keys_unchanged_and_fixture_keys_load():
    model = create_model("litehrnet_18")
    assert sum(isinstance(m, nn.BatchNorm2d) and type(m) is nn.BatchNorm2d for m in model.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in model.modules())
    keys = set(model.state_dict())
    assert "backbone.stage1.0.fuse_layers.2.0.1.3.num_batches_tracked" in keys


@pytest.mark.parametrize("name", ["small_hrnet_w16", "hrnet_w32", "dpn2_hrnet"])
def test_hrnet_and_dpn_update_every_batchnorm_once(name: str):
    """mmpose's HRNet fusion starts from ``y = 0`` (not in place) and calls each path once."""
    model = create_model(name, num_keypoints=4).train()
    model(torch.randn(2, 3, *HW))
    counts = {int(m.num_batches_tracked) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert counts == {1}
