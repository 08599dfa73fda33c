"""The shared top-down training/evaluation engine (``hrbench train`` / ``hrbench eval``).

Python API::

    from hrbench.engine import train, evaluate_checkpoint, resolve_config, list_runs
    summary = train("litehrnet_18", "data/coco", epochs=2, batch_size=16, input_hw=(128, 96))
    metrics = evaluate_checkpoint("litehrnet_18", summary["checkpoints"]["best"], "data/coco")

Modules: :mod:`~hrbench.engine.recipes` (official recipes, lr schedule), :mod:`~hrbench.engine.trainer`
(the loop), :mod:`~hrbench.engine.runs` (run folders, ``summary.json`` schema, :func:`list_runs`),
:mod:`~hrbench.engine.dist` (torchrun process groups), :mod:`~hrbench.engine.api` (the entry points).
Several processes: ``torchrun --nproc_per_node N -m hrbench train ARCH --data DIR ...``.
"""

from hrbench.engine.api import evaluate_checkpoint, resolve_config, train
from hrbench.engine.recipes import Recipe, get_recipe, lr_at, resolve_training
from hrbench.engine.runs import list_runs, read_metrics
from hrbench.engine.trainer import joints_mse_loss

__all__ = ["Recipe", "evaluate_checkpoint", "get_recipe", "joints_mse_loss", "list_runs", "lr_at", "read_metrics",
           "resolve_config", "resolve_training", "train"]
