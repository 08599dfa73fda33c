"""Fixed facts of the two benchmarks, in one place: keypoint count, the papers' default network
input (H, W) and the selection metric of each dataset."""

from __future__ import annotations

from hrbench.errors import ConfigError

DATASET_KEYPOINTS = {"coco": 17, "mpii": 16}
#: Default network input per dataset (H, W), as in the papers.
DATASET_INPUT = {"coco": (256, 192), "mpii": (256, 256)}
#: The metric the papers report and ``best.pt`` is selected by (MPII: the PCKh@0.5 mean).
DATASET_METRIC = {"coco": "AP", "mpii": "PCKh"}


def check_dataset(dataset: str) -> str:
    """``dataset`` if it is ``coco`` or ``mpii``; one-line :class:`ConfigError` otherwise."""
    if dataset not in DATASET_KEYPOINTS:
        raise ConfigError(f"unknown dataset {dataset!r}: expected coco or mpii")
    return dataset


def dataset_of(keypoints: int | None) -> str | None:
    """The dataset whose keypoint count is ``keypoints`` (17 -> coco, 16 -> mpii), else None."""
    return next((name for name, k in DATASET_KEYPOINTS.items() if k == keypoints), None)
