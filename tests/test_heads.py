"""The extension contracts: every registered family's backbone is a :class:`Backbone`; a head and
its codec are one pluggable unit. A toy 1-D coordinate-classification head + codec (a miniature
SimCC: one bin per input pixel along x and along y), registered from this test module, trains,
validates with flip test and is evaluated through hrbench's own engine without touching its files."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import TinyBackbone, TinyConfig
from torch import nn

from hrbench import codecs as codec_pkg
from hrbench.codecs import Codec, Decoded, MSRAHeatmap, build_codec, register_codec
from hrbench.codecs import base as codec_base
from hrbench.codecs.base import CODECS
from hrbench.complexity.conventions import get_convention
from hrbench.complexity.measure import measure_model
from hrbench.complexity.walker import Walker
from hrbench.data import build_dataset, collate
from hrbench.errors import ConfigError, HrbenchError
from hrbench.evaluation import predict, to_image
from hrbench.factory import create_model
from hrbench.models.backbone import Backbone
from hrbench.models.heads import Head, build_head, register_head
from hrbench.models.heads import base as head_mod
from hrbench.models.heads.base import HEADS
from hrbench.models.pose import PoseModel, codec_of
from hrbench.registry import SPEC_PACKAGE, create_config, get_entry, list_models

HW = (64, 48)


# ------------------------------------------------------------------------------ the toy head + codec
@dataclasses.dataclass(frozen=True)
class ToySimCC(Codec):
    """x and y classified over the input's pixels; Gaussian soft labels (σ px), normalised; the loss
    is the visibility-weighted soft-target cross-entropy of both axes, mean over keypoints."""

    sigma: float = 1.0
    target_keys = ("target_x", "target_y", "target_weight")

    def encode(self, joints, vis, input_hw):
        h, w = input_hw
        j = np.asarray(joints, dtype=np.float64)
        inside = (j[:, 0] >= 0) & (j[:, 0] < w) & (j[:, 1] >= 0) & (j[:, 1] < h)
        weight = ((np.asarray(vis).reshape(-1) > 0) & inside).astype(np.float32)
        out = {}
        for key, n, c in (("target_x", w, j[:, :1]), ("target_y", h, j[:, 1:2])):
            g = np.exp(-(np.arange(n)[None] - c) ** 2 / (2 * self.sigma ** 2)) * weight[:, None]
            out[key] = (g / np.maximum(g.sum(1, keepdims=True), 1e-12)).astype(np.float32)
        out["target_weight"] = weight
        return out

    def encode_batch(self, joints, vis, input_hw):
        parts = [self.encode(j, v, input_hw) for j, v in zip(joints.cpu().numpy(), vis.cpu().numpy(), strict=True)]
        return {k: torch.from_numpy(np.stack([p[k] for p in parts])).to(joints.device) for k in self.target_keys}

    def decode(self, output, post_process="default"):
        self.check_post_process(post_process)
        ox, oy = (o.detach().float().cpu().numpy() for o in output)
        prob = [np.exp(o - o.max(-1, keepdims=True)) / np.exp(o - o.max(-1, keepdims=True)).sum(-1, keepdims=True)
                for o in (ox, oy)]
        coords = np.stack([ox.argmax(-1), oy.argmax(-1)], -1).astype(np.float32)
        scores = np.minimum(prob[0].max(-1), prob[1].max(-1))[..., None].astype(np.float32)
        return Decoded(coords, scores, (ox.shape[-1], oy.shape[-1]))

    def flip_back(self, flipped_output, flip_pairs):
        ox, oy = flipped_output
        perm = list(range(ox.shape[1]))
        for a, b in flip_pairs:
            perm[a], perm[b] = b, a
        return ox.flip(-1)[:, perm], oy[:, perm]

    def loss(self, output, tx, ty, weight, reduction="mean"):
        ox, oy = (o.float() for o in output)
        ce = -(tx * ox.log_softmax(-1)).sum(-1) - (ty * oy.log_softmax(-1)).sum(-1)
        per_sample = (ce * weight).mean(1)
        return per_sample if reduction == "none" else per_sample.mean()


class ToySimCCHead(Head):
    """1x1 conv to K maps, each flattened and classified into W x-bins and H y-bins (Linear)."""

    codec_name = "toy_simcc"

    def __init__(self, in_channels, num_keypoints, codec=None, input_hw=HW):
        super().__init__(in_channels, num_keypoints, codec)
        h, w = input_hw
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 1)
        self.fc_x = nn.Linear(h // 4 * (w // 4), w)
        self.fc_y = nn.Linear(h // 4 * (w // 4), h)

    def forward(self, x):
        f = self.final_layer(x).flatten(2)
        return self.fc_x(f), self.fc_y(f)

    def walk(self, w, x):
        y = w(self.final_layer, x)
        flat = (y[0], y[1], y[2] * y[3])
        return w(self.fc_x, flat), w(self.fc_y, flat)


class ToyBackbone(Backbone):
    """A family from the test tree: conv 3x3/2 + BN + ReLU, twice (1/4 resolution, 8 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.out_channels = 8

    def forward(self, x):
        return self.body(x)

    def walk(self, w, x):
        return w(self.body, x)

    def check_input_size(self, h, w):
        if h % 4 or w % 4:
            raise HrbenchError(f"input {h}x{w}: must be multiples of 4")


@dataclasses.dataclass(frozen=True)
class ToySimCCConfig(TinyConfig):
    """The tiny engine family, ending in the toy head instead of the heatmap head."""

    head = "toy_simcc"

    def head_options(self):
        return {"input_hw": HW}


@pytest.fixture
def toy(monkeypatch):
    """Register the toy codec and head with the public decorators, into copies of the registries
    (restored afterwards)."""
    monkeypatch.setattr(codec_base.CODECS, "_items", dict(codec_base.CODECS._items))
    monkeypatch.setattr(head_mod.HEADS, "_items", dict(head_mod.HEADS._items))
    register_codec("toy_simcc")(ToySimCC)
    register_head("toy_simcc")(ToySimCCHead)
    return ToySimCC()


@pytest.fixture
def toy_arch(tiny_arch, toy, monkeypatch):
    """The engine's tiny registered architecture, its config now ending in the toy head."""
    from hrbench import registry

    entry = registry._REGISTRY[tiny_arch]
    monkeypatch.setitem(registry._REGISTRY, tiny_arch, dataclasses.replace(entry, fn=lambda: ToySimCCConfig()))
    return tiny_arch


# ------------------------------------------------------------------------------ the contracts
def _one_per_family() -> dict[type, str]:
    """One registered variant per config class, of hrbench's own specs (tests register others)."""
    out: dict[type, str] = {}
    for name in list_models():
        if get_entry(name).fn.__module__.startswith(SPEC_PACKAGE + "."):
            out.setdefault(type(create_config(name)), name)
    return out


def test_every_registered_family_satisfies_the_backbone_contract():
    families = _one_per_family()
    assert len(families) >= 7  # Lite-HRNet, Dite-HRNet, HRNet, DPN, SimpleBaseline, MobileNetV2, ShuffleNetV2
    for name in families.values():
        model = create_model(name)
        bb = model.backbone
        assert isinstance(bb, Backbone), name
        own = [c for c in type(bb).__mro__ if "walk" in vars(c)]
        assert own and own[0] is not Backbone, name
        assert isinstance(bb.out_channels, int) and bb.out_channels == model.head.in_channels, name
        bb.check_input_size(256, 192)  # the papers' input is accepted
        walker = Walker(model, get_convention("torchstat"))
        feats = walker(bb, (1, 3, 256, 192))  # one feature map, or a pyramid ending in the coarsest (CPN)
        last = feats[-1] if isinstance(feats[0], tuple) else feats
        assert last == (1, bb.out_channels, 256 // bb.out_stride, 192 // bb.out_stride), name
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, 256, 192))
        shapes = tuple(tuple(o.shape) for o in out) if isinstance(out, tuple) else tuple(out.shape)
        assert walker(model, (1, 3, 256, 192)) == shapes, name  # the counter's traversal ends where forward does
        assert type(model.head) in HEADS.values() and type(model.codec) in CODECS.values(), name
        assert model.head.codec is model.codec, name
    with pytest.raises(HrbenchError, match="multiples of 32"):  # Lite-HRNet-18: 4 x 2^3
        create_model("lite18").check_input_size(256, 200)


def test_contract_violations_are_refused():
    with pytest.raises(TypeError, match="must define walk"):
        type("NoWalkBackbone", (Backbone,), {})
    with pytest.raises(TypeError, match="must define walk"):
        type("NoWalkHead", (Head,), {})
    with pytest.raises(ConfigError, match="unknown head 'simcc'"):
        build_head("simcc", 8, 17)
    with pytest.raises(ConfigError, match="unknown codec 'simcc_x'"):
        build_codec("simcc_x")
    with pytest.raises(ValueError, match="registered twice"):
        register_codec("msra_heatmap")(MSRAHeatmap)
    with pytest.raises(ConfigError, match="no integer out_channels"):
        PoseModel(nn.ReLU(), 17)
    with pytest.raises(ConfigError, match="no post-processing 'dark'"):
        ToySimCC().decode((torch.zeros(1, 1, 4), torch.zeros(1, 1, 3)), post_process="dark")
    assert "msra_heatmap" in codec_pkg.list_codecs() and "heatmap" in head_mod.list_heads()
    # a bare module (no head) is read as the papers' heatmaps; a foreign backbone accepts any input size
    assert codec_of(nn.Identity()) == MSRAHeatmap()
    PoseModel(TinyBackbone(), 17).check_input_size(7, 5)


# ------------------------------------------------------------------------------ the toy codec, by hand
def test_toy_codec_hand_values(toy):
    t = toy.encode(np.array([[2.0, 1.0], [9.0, 1.0]]), np.array([1, 1]), (3, 4))  # H 3, W 4; joint 1 outside
    g = [math.exp(-((i - 2) ** 2) / 2) for i in range(4)]
    assert t["target_x"][0] == pytest.approx(np.array(g) / sum(g), rel=1e-6)
    gy = [math.exp(-((i - 1) ** 2) / 2) for i in range(3)]
    assert t["target_y"][0] == pytest.approx(np.array(gy) / sum(gy), rel=1e-6)
    assert t["target_weight"].tolist() == [1.0, 0.0] and t["target_x"][1].tolist() == [0.0] * 4
    # uniform logits: the cross-entropy of a normalised target is log(bins) per axis
    zero = (torch.zeros(2, 2, 4), torch.zeros(2, 2, 3))
    batch = {k: torch.from_numpy(np.stack([v, v])) for k, v in t.items()}
    loss = toy.loss(zero, batch["target_x"], batch["target_y"], batch["target_weight"])
    assert loss.item() == pytest.approx((math.log(4) + math.log(3)) / 2, rel=1e-6)  # 1 of 2 keypoints weighted
    x = torch.arange(8, dtype=torch.float32).reshape(1, 2, 4)
    y = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3)
    bx, by = toy.flip_back((x, y), [(0, 1)])
    assert bx.tolist() == [[[7, 6, 5, 4], [3, 2, 1, 0]]] and by.tolist() == [[[3, 4, 5], [0, 1, 2]]]
    mx, _ = toy.merge_flip((x, y), (x, y), [(0, 1)])
    assert mx.tolist() == [[[3.5, 3.5, 3.5, 3.5], [3.5, 3.5, 3.5, 3.5]]]


# ------------------------------------------------------------------------------ through hrbench's pipeline
def test_toy_head_trains_and_decodes_through_the_trainer_and_predict(toy, synth):
    from hrbench.data.raw import RawTopDownDataset
    from hrbench.engine.recipes import Training
    from hrbench.engine.run_config import RunConfig
    from hrbench.engine.trainer import Trainer
    from hrbench.registry import Recipe
    from hrbench.speed.gpu_pipeline import DeviceTopDown

    train_set = build_dataset("coco", synth, "train", HW, train=True)
    train_set.codec = toy
    sample = train_set[0]
    assert set(sample) == {"image", "target_x", "target_y", "target_weight", "meta"}
    assert sample["target_x"].shape == (17, 48) and sample["target_y"].shape == (17, 64)
    # the device-side pipeline encodes with the same codec
    raw = RawTopDownDataset(train_set)
    train_set.reseed(3)
    cpu = collate([train_set[1]])
    raw.reseed(3)
    dev = DeviceTopDown(HW, "cpu", raw.codec)(raw.collate([raw[1]]))
    for k in toy.target_keys:
        assert torch.allclose(dev[k], cpu[k], atol=1e-6), k

    torch.manual_seed(0)
    model = PoseModel(ToyBackbone(), 17, head="toy_simcc", input_hw=HW)
    assert model.codec is model.head.codec and isinstance(model.codec, ToySimCC)
    train = Training(optimizer="adam", epochs=1, batch=4, world_size=1, total_batch=4, recipe_total_batch=4, lr=1e-3,
                     lr_scaled=False, lr_steps=(1,), gamma=0.1, warmup_iters=0, warmup_ratio=0.1, weight_decay=0.0)
    cfg = RunConfig(arch="toy", paper="test", overrides={}, dataset="coco", data=None, input_hw=HW, keypoints=17,
                    metric="val_loss", seed=0, recipe=Recipe("test", "test", 1, 4, 1, 1e-3), train=train,
                    val_interval=1, val_flip=False, amp=None, channels_last=False, gpu_aug=False, workers=0,
                    name="toy", run_dir=None)
    object.__setattr__(train, "lr", 0.0)  # lr 0 (which a user is refused): the weights stay fixed
    tr = Trainer(model, train_set, None, cfg, None, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    mean = tr.train_epoch()
    # lr 0: the weights stay, so the epoch's loss is the toy loss of the same batches recomputed by hand
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    tr.sampler.set_epoch(0)
    tr.train_view.set_epoch(0)
    by_hand = []
    model.train()
    for batch in tr.loader:
        with torch.no_grad():
            ox, oy = model(batch["image"])
        ce = [-(batch[f"target_{a}"].numpy() * torch.log_softmax(o, -1).numpy()).sum(-1)
              for a, o in (("x", ox), ("y", oy))]
        by_hand.append(float(((ce[0] + ce[1]) * batch["target_weight"].numpy()).mean()))
    assert len(by_hand) == tr.steps_per_epoch >= 2 and mean == pytest.approx(np.mean(by_hand), rel=1e-5)

    # inference: flip test and decoding through the toy codec, checked against the steps done here
    val_set = build_dataset("coco", synth, "val", HW, train=False)
    model.eval()
    p = predict(model, val_set, batch_size=4, flip_test=True)
    batch = collate([val_set[i] for i in range(len(val_set))])
    with torch.no_grad():
        ox, oy = model(batch["image"])
        fx, fy = model(batch["image"].flip(3))
    perm = list(range(17))
    for a, b in val_set.flip_pairs:
        perm[a], perm[b] = b, a
    mx, my = (ox + fx.flip(-1)[:, perm]) / 2, (oy + fy[:, perm]) / 2
    xy = np.stack([mx.argmax(-1).numpy(), my.argmax(-1).numpy()], -1).astype(np.float64)
    meta = batch["meta"]
    s = meta["scale"].astype(np.float64) * 200
    expect = xy * (s[:, None] / [48, 64]) + meta["center"][:, None] - s[:, None] * 0.5
    assert np.allclose(p["keypoints"][..., :2], expect, atol=1e-3)
    conf = np.minimum(torch.softmax(mx, -1).max(-1).values.numpy(), torch.softmax(my, -1).max(-1).values.numpy())
    assert np.allclose(p["keypoints"][..., 2], conf, atol=1e-6)


def test_toy_codec_round_trip_gives_full_pckh(toy, tmp_path):
    """decode(encode(ground truth)) through hrbench's image mapping: every MPII joint within PCKh@0.5."""
    from hrbench.data.synth import generate
    from hrbench.evaluation import evaluate

    root = tmp_path / "mpii"
    generate("mpii", root, 2, 4, seed=1)
    val = build_dataset("mpii", root, "val", (64, 64), train=False)
    val.codec = toy
    rows = []
    for i in range(len(val)):
        s = val[i]
        out = (s["target_x"][None], s["target_y"][None])
        dec = toy.decode(out)
        xy = to_image(dec, s["meta"]["center"][None], s["meta"]["scale"][None])
        rows.append(np.concatenate([xy, dec.scores], axis=2)[0])
    preds = {"keypoints": np.stack(rows), "center": np.stack([val[i]["meta"]["center"] for i in range(len(val))]),
             "scale": np.stack([val[i]["meta"]["scale"] for i in range(len(val))])}
    preds.update(area=np.prod(preds["scale"] * 200, axis=1), score=np.ones(len(val), np.float32),
                 image_id=np.array([r["image_id"] for r in val.records]), bbox_id=np.arange(len(val)))
    assert evaluate(val, preds)["Mean"] == pytest.approx(100.0)


def test_registered_family_with_the_toy_head_trains_and_evaluates_end_to_end(toy_arch, synth, tmp_path):
    from hrbench.engine import evaluate_checkpoint, train

    model = create_model(toy_arch)
    assert isinstance(model.head, ToySimCCHead) and isinstance(model.codec, ToySimCC)
    c = measure_model(PoseModel(ToyBackbone(), 17, head="toy_simcc", input_hw=HW), HW, engines=("paper", "analytic"))
    assert c.counts["analytic"] == c.counts["paper"] and c.errors == {}  # the head's walk mirrors its forward
    s = train(toy_arch, synth, epochs=1, batch=4, input_hw=HW, out=tmp_path, name="toy", device="cpu",
              workers=0, progress=False)
    assert s["best"]["input"] == "64x48" and 0.0 <= s["best"]["AP"] <= 100.0 and s["best"]["val_loss"] > 0
    m = evaluate_checkpoint(toy_arch, s["checkpoints"]["best"], synth, device="cpu", workers=0, batch_size=4)
    assert m["AP"] == pytest.approx(s["best"]["AP"]) and m["flip"] is True


# ------------------------------------------------------------------------------ every registered head / codec
@pytest.mark.parametrize("name", codec_pkg.list_codecs())
def test_every_codec_encodes_a_batch_as_its_samples(name):
    """The device-side encoding equals the per-sample one (the contract of ``encode_batch``), on
    joints inside, on the border of and outside a 64x48 input, visible or not."""
    codec = build_codec(name)
    g = np.random.default_rng(0)
    joints = g.uniform(-20, 70, size=(3, 17, 2)).astype(np.float32)
    vis = (g.random((3, 17)) > 0.3).astype(np.float32)
    batch = codec.encode_batch(torch.from_numpy(joints), torch.from_numpy(vis), HW)
    assert list(batch) == list(codec.target_keys)
    for b in range(3):
        one = codec.encode(joints[b], vis[b], HW)
        for k in codec.target_keys:
            assert np.allclose(batch[k][b].numpy(), one[k], atol=1e-6), (name, k)


@pytest.mark.parametrize("name", head_mod.list_heads())
def test_every_head_walks_as_it_runs_and_names_a_registered_codec(name):
    sized = {"input_hw": HW, "feature_stride": 4} if name == "rtmcc" else {}  # built for its input
    model = PoseModel(ToyBackbone(), 17, head=name, **sized)
    assert model.head.codec_name in codec_pkg.list_codecs() and model.codec.name == model.head.codec_name
    c = measure_model(model, HW, engines=("paper", "analytic"))
    assert c.errors == {} and c.counts["analytic"] == c.counts["paper"] > 0
