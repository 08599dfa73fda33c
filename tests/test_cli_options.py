"""Every command spells the shared options the same way: one default and one help text each."""

from __future__ import annotations

import typer

from hrbench.cli import app
from hrbench.cli.options import DEFAULT_WORKERS, THREADS_HELP, WORKERS_HELP
from hrbench.device import DEVICE_HELP


def _commands(group=None, prefix: str = ""):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def _options(name: str) -> dict[str, list]:
    """command -> the click option called ``--name``, for every command that has one."""
    found = {}
    for cmd_name, cmd in _commands():
        for p in cmd.params:
            if f"--{name}" in getattr(p, "opts", ()):
                found[cmd_name] = p
    return found


def test_device_workers_threads_agree_everywhere():
    device, workers, threads = _options("device"), _options("workers"), _options("threads")
    assert {"bench", "bench-data", "bench-dka", "doctor", "tables", "train", "eval", "ablate"} <= set(device)
    assert {"train", "eval", "ablate", "bench-data"} <= set(workers)
    assert {p.default for p in device.values()} == {"auto"} and all(p.help.endswith(DEVICE_HELP)
                                                                     for p in device.values())
    assert {p.default for p in workers.values()} == {DEFAULT_WORKERS}
    assert all(p.help.endswith(WORKERS_HELP) for p in workers.values())
    assert {p.default for p in threads.values()} == {"auto"} and all(p.help.endswith(THREADS_HELP)
                                                                     for p in threads.values())


def test_shared_wording():
    for name, start in (("input", "network input HxW"), ("batch", "samples per batch"), ("json", "print "),
                        ("out", "output "), ("dataset", "coco | mpii"), ("keypoints", "number of keypoints")):
        options = _options(name)
        assert options, name
        for cmd, p in options.items():
            assert p.help.startswith(start), (cmd, name, p.help)
