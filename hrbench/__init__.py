"""hrbench: lightweight human-pose HRNets in one registry, measured honestly.

>>> import hrbench
>>> model = hrbench.create_model("lite18", num_keypoints=17)
>>> hrbench.list_models("litehrnet_*")
"""

from hrbench.errors import HrbenchError
from hrbench.factory import create_model
from hrbench.registry import create_config, list_models, register_model

__all__ = ["HrbenchError", "create_config", "create_model", "list_models", "register_model"]
__version__ = "0.1.0"
