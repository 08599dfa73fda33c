"""The registered datasets (mmengine-style registry): one :class:`DatasetSpec` per data set.

A new data set is a module here holding its facts and its :func:`register_dataset` call, imported
below; a data set in COCO's annotation style (CrowdPose, AIC) reuses the ``"coco"`` builder and the
``"cocoeval"`` evaluator, any other layout registers its own with :func:`register_builder` (in
``hrbench.data``) and :func:`register_evaluator` (in ``hrbench.evaluation``).
"""

from hrbench.datasets import coco, mpii  # noqa: F401  (registration, in this order)
from hrbench.datasets.spec import (
    DEFAULT_DATASET,
    DatasetSpec,
    UnknownDatasetError,
    dataset_of,
    get_builder,
    get_dataset,
    get_evaluator,
    list_datasets,
    names_text,
    register_builder,
    register_dataset,
    register_evaluator,
)

__all__ = ["DEFAULT_DATASET", "DatasetSpec", "UnknownDatasetError", "dataset_of", "get_builder", "get_dataset",
           "get_evaluator", "list_datasets", "names_text", "register_builder", "register_dataset",
           "register_evaluator"]
