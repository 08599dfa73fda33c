"""Architecture configurations: frozen dataclasses that validate themselves and build a model.

A registered variant (``architectures/``) is a function returning one of these; ``create_model``
applies user overrides with :meth:`ModelConfig.override`, builds the backbone with
:meth:`ModelConfig.build_backbone` and puts the pose head on it. (A training run's configuration is
:mod:`hrbench.engine.run_config`.)
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, ClassVar

from torch import nn

from hrbench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base class of every architecture configuration.

    Subclasses declare their hyper-parameters as dataclass fields, implement
    :meth:`build_backbone`, and may extend :meth:`validate` (raise :class:`ConfigError`
    naming the parameter). ``head`` names the registered head (``hrbench.models.heads``) the
    pose model ends in, built with :meth:`head_options`; a family may redeclare ``head`` as a
    field to make it a hyper-parameter.
    """

    head: ClassVar[str] = "heatmap"

    def validate(self) -> None:
        """Raise ConfigError for an out-of-range hyper-parameter."""

    def override(self, **overrides: Any) -> ModelConfig:
        """Return a copy with ``overrides`` applied, coercing lists to tuples at every depth; unknown keys fail."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in names:
                close = difflib.get_close_matches(key, sorted(names), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(
                    f"unknown hyper-parameter {key!r} for {type(self).__name__}{hint}; "
                    f"known: {', '.join(sorted(names))}"
                )
        fixed = {k: _tuples(v) for k, v in overrides.items()}
        new = dataclasses.replace(self, **fixed)
        new.validate()
        return new

    def build_backbone(self) -> nn.Module:
        raise NotImplementedError

    def head_options(self) -> dict[str, Any]:
        """Keyword arguments of the head beyond (in_channels, num_keypoints); none by default."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def require(cond: bool, param: str, message: str) -> None:
    """Raise ConfigError ``"<param>: <message>"`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"invalid hyper-parameter {param}: {message}")


def is_positive_int(v: object) -> bool:
    """An ``int`` (not a ``bool``) >= 1: the check of every count and width hyper-parameter."""
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _tuples(value: Any) -> Any:
    """Lists (e.g. from JSON: ``num_channels`` [[40, 80], [40, 80, 160]]) as tuples, at every depth."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def per_branch(value: Any, n: int, param: str) -> tuple:
    """Validate a per-branch tuple (highest resolution first) of length ``n``."""
    if not isinstance(value, tuple):
        value = (value,) * n
    require(len(value) == n, param, f"needs {n} values (one per branch, highest resolution first), got {len(value)}")
    return value
