"""Model cards: a registry entry plus every published number for it (``reported.csv``)."""

from __future__ import annotations

from typing import Any

from hrbench.reference import giga_of, reported_rows
from hrbench.registry import ModelEntry, get_entry


def reported_for(name: str | ModelEntry) -> list[dict[str, Any]]:
    """Published rows for model ``name`` (or its resolved entry), selected by its entry's ``reported`` keys.

    A key is ``(source, model)`` or ``(source, model, backbone)`` as printed in reported.csv
    (the backbone tells apart rows such as Lite-HRNet's "HRNetV1" W32/W48); source ``"*"``
    matches every source.
    """
    entry = name if isinstance(name, ModelEntry) else get_entry(name)
    return [r for r in reported_rows() if any(key_matches(k, r) for k in entry.reported)]


def key_matches(key: tuple[str, ...], row: dict[str, Any]) -> bool:
    """Whether a card's ``reported`` key (``(source, model)`` or ``(source, model, backbone)``, source
    ``"*"`` for every source) names the printed ``row`` (its ``source``, ``model``, ``backbone``): the
    one matcher of model cards and of the tables (:mod:`hrbench.reports.targets`)."""
    source, model, *backbone = key
    return (source in ("*", row["source"]) and model == row["model"]
            and (not backbone or backbone[0] == row.get("backbone", "")))


def published_complexity(name: str | ModelEntry, input_hw: tuple[int, int],
                         dataset: str | None = None) -> dict[str, Any]:
    """Published params (M) and paper-convention MFLOPs for ``name`` at ``input_hw``.

    GFLOPs-only sources are converted to the same binary-M unit (x the source table's
    :func:`~hrbench.reference.giga_of`, 1024 for most) so they compare with ``paper_mflops``.
    Returns {} when nothing is published for that input.
    """
    want = f"{input_hw[0]}x{input_hw[1]}"
    rows = [r for r in reported_for(name)
            if r["input"] == want and (not dataset or r["dataset"] == dataset)
            and (r["mflops"] is not None or r["gflops"] is not None)]
    # The most precise figure wins: MFLOPs over rounded GFLOPs, then rows that also give params.
    rows.sort(key=lambda r: (r["mflops"] is None, r["params_M"] is None))
    for r in rows[:1]:
        giga = None if r["mflops"] is not None else giga_of(r["source"], r["table"])
        mflops = r["mflops"] if giga is None else r["gflops"] * giga
        return {"params_M": r["params_M"], "mflops": mflops, "gflops": r["gflops"], "giga": giga,
                "source": r["source"], "table": r["table"]}
    return {}


def model_card(name: str, **overrides: Any) -> dict[str, Any]:
    """The card of ``name``; ``overrides`` (validated) show the configuration they produce."""
    entry = get_entry(name)
    return {
        "name": entry.name,
        "aliases": list(entry.aliases),
        "paper": entry.paper,
        "convention": entry.convention,
        "notes": entry.notes,
        "config": entry.config(**overrides).to_dict(),
        "reported": reported_for(name),
    }
