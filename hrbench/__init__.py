"""hrbench: lightweight human-pose HRNets in one registry, measured honestly.

>>> import hrbench
>>> model = hrbench.create_model("lite18", num_keypoints=17)
>>> hrbench.list_models("litehrnet_*")
"""

import os as _os

# Before torch loads: libgomp prints "libgomp: Invalid value for environment variable OMP_NUM_THREADS"
# for a malformed value. It is set aside here and refused by hrbench.threads (the CLI: at its start).
if (_omp := _os.environ.get("OMP_NUM_THREADS", "").strip()) and not (_omp.isdigit() and int(_omp) > 0):
    _os.environ["HRBENCH_INVALID_OMP_NUM_THREADS"] = _os.environ.pop("OMP_NUM_THREADS")

from hrbench.errors import HrbenchError  # noqa: E402
from hrbench.factory import create_model  # noqa: E402
from hrbench.registry import create_config, list_models, register_model  # noqa: E402

__all__ = ["HrbenchError", "create_config", "create_model", "list_models", "register_model"]
__version__ = "0.1.0"
