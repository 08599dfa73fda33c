"""The one table behind every extension point (as mmengine's registries): names -> registered
objects, filled by the imports of plugin modules at the first lookup.

Heads (:mod:`hrbench.models.heads`), codecs (:mod:`hrbench.codecs`), counting conventions and
counting engines (:mod:`hrbench.complexity`) each keep one :class:`Registry`: a new one is a module
that registers itself, found either by scanning its package (every module but ``base`` and private
ones) or by a listed module name. An unknown name is one line naming the closest or the known names.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from hrbench.errors import ConfigError, HrbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind``: the word used in messages (``"codec"``); ``package``: scanned for plugin modules at the
    first lookup; ``modules``: further modules imported then; ``error``: the class of the unknown-name error."""

    def __init__(self, kind: str, *, package: str | None = None, modules: Sequence[str] = (),
                 error: type[HrbenchError] = ConfigError) -> None:
        self.kind = kind
        self.package = package
        self.modules = tuple(modules)
        self.error = error
        self._items: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name`` (a name is registered once)."""
        if name in self._items:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._items[name] = item
        return item

    def load(self) -> None:
        """Import the plugin modules once (each registers its entries here)."""
        if self._loaded:
            return
        self._loaded = True
        if self.package is not None:
            package = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
                if not info.name.startswith("_") and info.name != "base":
                    importlib.import_module(f"{self.package}.{info.name}")
        for module in self.modules:
            importlib.import_module(module)

    def get(self, name: str) -> T:
        """The entry ``name``; an unknown name is one line (:attr:`error`)."""
        self.load()
        if name not in self._items:
            close = difflib.get_close_matches(str(name), list(self._items), n=3, cutoff=0.5)
            hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(sorted(self._items))}"
            raise self.error(f"unknown {self.kind} {name!r}; {hint}")
        return self._items[name]

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        self.load()
        return tuple(self._items)

    def values(self) -> tuple[T, ...]:
        self.load()
        return tuple(self._items.values())

    def __contains__(self, name: Any) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
