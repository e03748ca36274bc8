"""A stage's view of the config: the paths its declaration names (tasks/stages.py), and nothing else.

The declared paths are the stage's cache-key section, so a stage that read an undeclared value would not rerun
when that value changes. Reading through this view makes that impossible: an undeclared path fails at once,
naming the stage and the path to declare.
"""

from __future__ import annotations

from typing import Any, Iterable

from pydantic import BaseModel


class UndeclaredConfig(AttributeError):
    pass


class ConfigView:
    """Attribute access to a pydantic config, limited to ``allowed`` dotted paths (and their children).
    Methods of the config (e.g. ``resolve_path``) stay callable."""

    __slots__ = ("_obj", "_prefix", "_allowed", "_stage")

    def __init__(self, obj: BaseModel, allowed: Iterable[str], stage: str, prefix: str = ""):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_allowed", tuple(allowed))
        object.__setattr__(self, "_stage", stage)

    def __getattr__(self, name: str) -> Any:
        obj = self._obj
        value = getattr(obj, name)
        if name not in type(obj).model_fields:
            return value  # a method or property of the config object
        path = self._prefix + name
        if any(path == a or path.startswith(a + ".") for a in self._allowed):
            return value
        if isinstance(value, BaseModel) and any(a.startswith(path + ".") for a in self._allowed):
            return ConfigView(value, self._allowed, self._stage, path + ".")
        raise UndeclaredConfig(
            f"stage '{self._stage}' read config '{path}', which its @stage(config=...) does not declare: add it there "
            "(it is part of the stage's cache key)"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a stage's config is read-only")

    def __repr__(self) -> str:
        return f"ConfigView({self._prefix or 'config'}, allowed={list(self._allowed)})"
