"""Counting engines and conventions are tables: a toy engine and a toy convention registered from
the test tree are counted, printed and explained without touching hrbench's files; an architecture
is resolved once on the way to its count, an hrbench checkpoint's header checked once."""

from __future__ import annotations

import json

import pytest
from test_complexity import BN_ELEMS, HW, TinyConfig, register_tiny
from torch import nn

from hrbench import checkpoint as ckpt_module
from hrbench import factory, registry
from hrbench.checkpoint import hrbench_payload
from hrbench.cli import main
from hrbench.complexity import conventions as convention_table
from hrbench.complexity import engines as engine_table
from hrbench.complexity.conventions import Convention, Rule, get_convention, list_conventions, register_convention
from hrbench.complexity.engines import Count, Counting, Engine, register_engine
from hrbench.complexity.measure import measure
from hrbench.errors import CheckpointError
from hrbench.registry import get_entry, list_models, register_model

register_tiny()


def _bn_elements(c: Counting) -> Count:
    """Toy engine: elements entering each BatchNorm2d, every call (one forward pass of its own)."""
    import torch

    seen: dict[str, int] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, seen.get(n, 0) + i[0].numel()))
             for n, m in c.model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            c.model(torch.zeros(1, 3, *c.input_hw))
    finally:
        for h in hooks:
            h.remove()
    others = sorted({type(m).__name__ for m in c.model.modules() if not isinstance(m, nn.BatchNorm2d)
                     and next(m.children(), None) is None})
    return Count(sum(seen.values()), seen, {"other_leaf_types": others})


TOY = Engine("bn_elems", _bn_elements, key="bn_kelems", scale=1000, unit="k elements into BatchNorm2d (1e3)",
             short_unit="k BN elems /1e3", skips="every module but BatchNorm2d")


@pytest.fixture
def toy_engine(monkeypatch):
    """The toy engine, registered after hrbench's five for this test only (a copy of the table)."""
    engine_table.engine_names()  # hrbench's own engines first
    monkeypatch.setattr(engine_table.ENGINES, "_items", dict(engine_table.ENGINES._items))
    return register_engine(TOY)


def test_toy_engine_in_measure(toy_engine):
    c = measure("_test_tiny", HW, engines=("bn_elems", "macs"), by_module=True)
    assert c.counts["bn_elems"] == BN_ELEMS and c.counts["paper"] is None
    d = c.to_dict()
    assert d["bn_kelems"] == BN_ELEMS / 1000 and d["units"]["bn_kelems"] == TOY.unit
    assert d["skipped"]["bn_elems"] == {"other_leaf_types": ["Conv2d", "ReLU", "Sigmoid"]}
    assert d["by_module"][0]["module"] == "(total)" and d["by_module"][0]["bn_elems"] == BN_ELEMS / 1000
    assert list(d["counts"]) == ["paper", "analytic", "fvcore", "ptflops", "macs", "bn_elems"]


def test_toy_engine_in_flops_json_table_and_all(toy_engine, capsys, monkeypatch):
    assert main(["flops", "_test_tiny", "--input", "32x24", "--engines", "paper,bn_elems", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["counts"]["bn_elems"] == BN_ELEMS and d["bn_kelems"] == BN_ELEMS / 1000 and d["macs"] is None
    assert main(["flops", "--all", "_test_tiny*", "--input", "32x24", "--jobs", "1", "--engines", "bn_elems",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["counts"]["bn_elems"] for r in rows] == [BN_ELEMS] * len(rows) and len(rows) >= 2
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["flops", "_test_tiny", "--input", "32x24", "--engines", "bn_elems,macs"]) == 0
    out = capsys.readouterr().out
    assert "k BN elems /1e3" in out and f"{BN_ELEMS:,}" in out and TOY.unit in out


def test_engine_registered_twice_is_refused(toy_engine):
    with pytest.raises(ValueError, match="registered twice"):
        register_engine(TOY)


# --- a toy convention: BatchNorm2d only, 1 per element -------------------------------------
def _bn_count(m, i, o) -> int:
    return i[0] * i[1] * i[2] * i[3]


@pytest.fixture
def isolated_cards(monkeypatch):
    """Cards and conventions registered by a test are gone after it (copies of both tables)."""
    registry.list_models()
    list_conventions()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(convention_table.CONVENTIONS, "_items", dict(convention_table.CONVENTIONS._items))


def _register_bn_convention() -> None:
    register_convention(Convention(
        name="_test_bn_only", description="BatchNorm2d elements only (test)",
        rules=((nn.BatchNorm2d, Rule(_bn_count, "bn", "+ BatchNorm2d: 1 per element (test rule)")),),
        last_call_only=False, skips="everything but BatchNorm2d"))
    register_model("_test_bn_card", paper="lite", convention="_test_bn_only")(lambda: TinyConfig())


def test_toy_convention_counts_explains_and_shows_its_words(isolated_cards):
    _register_bn_convention()
    c = measure("_test_bn_card", HW, engines=("paper", "analytic"), explain=True)
    assert c.counts["paper"] == c.counts["analytic"] == BN_ELEMS
    rows = {r["term"]: (r["raw"], r["rule"]) for r in c.explain["paper"]["rows"]}
    assert rows["bn"] == (BN_ELEMS, "+ BatchNorm2d: 1 per element (test rule)")
    assert sum(r["raw"] for r in c.explain["paper"]["rows"]) == BN_ELEMS
    assert c.to_dict()["convention_skips"] == "everything but BatchNorm2d"


def test_card_conventions_are_registered_and_an_unknown_one_is_one_line(isolated_cards, capsys):
    for name in list_models():
        assert get_convention(get_entry(name).convention).name == get_entry(name).convention, name
    register_model("_test_noconv_card", convention="no-such-convention")(lambda: TinyConfig())
    assert main(["flops", "_test_noconv_card", "--input", "32x24"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and "unknown counting convention 'no-such-convention'" in err
    assert len(err.strip().splitlines()) == 1


# --- resolved once, checked once ----------------------------------------------------------
def test_flops_resolves_the_architecture_once(monkeypatch, capsys):
    calls: list[str] = []
    real = registry.resolve
    monkeypatch.setattr(registry, "resolve", lambda name: calls.append(name) or real(name))
    assert main(["flops", "_test_tiny", "--input", "32x24", "--engines", "paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "_test_tiny"
    assert calls == ["_test_tiny"]


def test_restore_checks_an_hrbench_header_once(monkeypatch):
    calls: list[tuple[str, str]] = []
    real = ckpt_module.check_arch

    def spy(saved, want, source):
        calls.append((saved, want))
        return real(saved, want, source)

    monkeypatch.setattr(ckpt_module, "check_arch", spy)
    monkeypatch.setattr(factory, "check_arch", spy)
    payload = hrbench_payload(factory.create_model("_test_tiny", num_keypoints=16))
    restored = factory.restore_model("_test_tiny", payload)
    assert calls == [("_test_tiny", "_test_tiny")]
    assert restored.dataset == "mpii" and restored.model.num_keypoints == 16 and not restored.model.training
    with pytest.raises(CheckpointError, match="is for architecture _test_tiny, not _test_tiny_dite"):
        factory.restore_model("_test_tiny_dite", payload)
    with pytest.raises(CheckpointError, match="predicts 16 keypoints; coco has 17"):
        factory.restore_model("_test_tiny", payload, dataset="coco")
