"""How a stage declares itself (docs/design.md, "Stages"): ``@stage(...)`` on its ``run(ctx, <inputs>...)``.

The declaration names the stage's group, the artifacts it publishes, the config paths it reads, and where the
inputs that are not pipeline artifacts come from; the parameters of ``run`` after ``ctx`` are its inputs,
bound by name. tasks/stages.py registers the stages and derives the graph from these declarations. (A module
of its own, so that registering a stage does not change the code version, and so the cache key, of the others.)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from grm.config import Config

TABLE, MODEL, FILES = "tables", "models", "files"  # the store's artifact kinds

# The config sections every stage that loads or samples a model reads.
MODEL_SECTIONS = ("seed", "models", "prompts", "generation")


def always(cfg: Config) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """A stage's declaration (see the module docstring). Fields after ``enabled`` are filled on registration."""

    group: str  # a group of stages run together: `grm run --only GROUP`, the flow's ``only`` parameter
    outputs: Mapping[str, str]  # artifact name -> store kind (TABLE | MODEL | FILES)
    optional_outputs: tuple[str, ...] = ()  # outputs a run may leave out (e.g. plots when disabled)
    config: tuple[str, ...] = ()  # dotted config paths it reads: its cache-key section; reading others fails
    models: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)  # input -> config path(s) naming a model
    files: Mapping[str, str] = field(default_factory=dict)  # input -> config path naming a file (None: not given)
    external: Mapping[str, Callable] = field(default_factory=dict)  # input -> fn(cfg, store) -> {key: ArtifactRef}
    when: Mapping[str, Callable[[Config], bool]] = field(default_factory=dict)  # optional input: bound only if true
    enabled: Callable[[Config], bool] = always
    name: str = ""
    module: str = ""
    run: Callable[..., Any] | None = None
    inputs: tuple[str, ...] = ()  # run's parameters after ctx, in order
    optional: frozenset[str] = frozenset()  # parameters with a default (None when absent)

    def describe_inputs(self) -> list[str]:
        """The inputs as the README's table shows them."""
        out = []
        for name in self.inputs:
            if name in self.models:
                paths = self.models[name]
                out.append(f"{name} (model: {' or '.join((paths,) if isinstance(paths, str) else paths)})")
            elif name in self.files:
                out.append(f"{name} (file: {self.files[name]})")
            elif name in self.external:
                out.append(f"{name} ({(self.external[name].__doc__ or '').strip().splitlines()[0]})")
            else:
                out.append(name + ("?" if name in self.optional else ""))
        return out


def stage(**declaration) -> Callable[[Callable], Callable]:
    """Declare the decorated ``run(ctx, <inputs>...)`` as a stage: ``@stage(group=..., outputs=..., ...)``."""

    def deco(run: Callable) -> Callable:
        params = list(inspect.signature(run).parameters.values())[1:]  # after ctx
        module = run.__module__
        spec = Stage(**declaration)
        run.stage = replace(  # type: ignore[attr-defined]
            spec,
            name=module.rpartition(".")[2],
            module=module,
            run=run,
            inputs=tuple(p.name for p in params),
            optional=frozenset(p.name for p in params if p.default is not inspect.Parameter.empty),
        )
        return run

    return deco
