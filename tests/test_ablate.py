"""The ablation runner's state file (``<out>/ablate-<grid>.json``): a corrupt one is a one-line error that
names the file and what to do, never silently replaced."""

from __future__ import annotations

import json

import pytest

from hrbench import ablate
from hrbench.cli import main
from hrbench.errors import HrbenchError

GRID = "dpn-table5"


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "JSONDecodeError"),
    ("[1, 2]", "not a hrbench-ablate-v1 state file (format: 'list')"),
    (json.dumps({"format": "something-else", "cells": {}}), "not a hrbench-ablate-v1 state file"),
    (json.dumps({"format": ablate.STATE_FORMAT, "grid": GRID, "cells": []}), "'cells' or 'plan' entry is malformed"),
])
def test_corrupt_state_file_is_a_one_line_error(tmp_path, text, problem):
    path = tmp_path / f"ablate-{GRID}.json"
    path.write_text(text)
    with pytest.raises(HrbenchError) as info:
        ablate.read_state(tmp_path, GRID)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and problem in message and "delete it" in message
    assert path.read_text() == text  # left as it was


def test_corrupt_state_file_through_the_cli(tmp_path, capsys):
    out = tmp_path / "runs"
    out.mkdir()
    path = out / f"ablate-{GRID}.json"
    path.write_text("{truncated")
    assert main(["ablate", GRID, "--status", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"ablation state file {path}" in " ".join(err.split()) and "delete it" in err
    data = tmp_path / "data"
    data.mkdir()
    argv = ["ablate", GRID, "--train", "--data", str(data), "--out", str(out), "--epochs", "1"]
    assert main(argv) == 2  # refused before any cell is trained
    assert "delete it" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [path.name]


def test_missing_state_file_starts_fresh(tmp_path):
    assert ablate.read_state(tmp_path, GRID) == {"format": ablate.STATE_FORMAT, "grid": GRID, "cells": {}}
