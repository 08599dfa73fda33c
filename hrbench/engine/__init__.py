"""The shared top-down training/evaluation engine (``hrbench train`` / ``hrbench eval``).

Python API::

    from hrbench.engine import TrainOptions, train, evaluate_checkpoint, resolve_config, list_runs
    summary = train("litehrnet_18", "data/coco", epochs=2, batch=16, input_hw=(128, 96))
    summary = train(TrainOptions("litehrnet_18", "data/coco", epochs=2, batch=16))   # the same
    metrics = evaluate_checkpoint("litehrnet_18", summary["checkpoints"]["best"], "data/coco")

Modules: :mod:`~hrbench.engine.run_config` (:class:`TrainOptions`, what the user gave; :class:`RunConfig`,
what the run uses = ``config.json``), :mod:`~hrbench.engine.recipes` (a model's recipe, its resolution,
the lr schedule), :mod:`~hrbench.engine.samples` (reproducible sample order and RNG state),
:mod:`~hrbench.engine.trainer` (the loop), :mod:`~hrbench.engine.runlog` (the main rank's log and
events), :mod:`~hrbench.engine.resume` (what a resumed run may change), :mod:`~hrbench.engine.runs`
(run folders, ``summary.json`` schema, :func:`list_runs`), :mod:`~hrbench.engine.dist` (torchrun
process groups), :mod:`~hrbench.engine.api` (the entry points).
Several processes: ``torchrun --nproc_per_node N -m hrbench train ARCH --data DIR ...``.
"""

from hrbench.engine.api import evaluate_checkpoint, train
from hrbench.engine.recipes import Training, get_recipe, lr_at, resolve_training
from hrbench.engine.run_config import RunConfig, TrainOptions, resolve_config
from hrbench.engine.runlog import RunLog
from hrbench.engine.runs import list_runs, read_metrics
from hrbench.engine.trainer import joints_mse_loss
from hrbench.registry import Recipe

__all__ = ["Recipe", "RunConfig", "RunLog", "TrainOptions", "Training", "evaluate_checkpoint", "get_recipe",
           "joints_mse_loss", "list_runs", "lr_at", "read_metrics", "resolve_config", "resolve_training", "train"]
