"""The stage graph (docs/design.md, "The DAG"), derived from each stage's own declaration.

A stage is a module whose ``run`` carries a ``@stage(...)`` declaration (tasks/stage.py). Registering it is one
line in ``STAGE_MODULES``; the DAG order check, producers, groups, cache-key sections and the README's DAG
table are all derived here from the declarations.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

from grm.config import Config
from tasks.stage import MODEL, Stage, always

# Registration, in run order (an input must be produced by an earlier stage: checked on load).
STAGE_MODULES = [
    "tasks.import_model",
    "tasks.math_samples",
    "tasks.curate",
    "tasks.bootstrap",
    "tasks.warmup",
    "tasks.rft_sample",
    "tasks.rft_train",
    "tasks.rl",
    "tasks.metarm_data",
    "tasks.metarm_train",
    "tasks.judge",
    "tasks.evaluate",
]

# Tables written by a command rather than a stage, which a stage may read as an input.
COMMAND_TABLES = {"imports": "grm data import"}


@dataclass(frozen=True)
class Graph:
    stages: tuple[Stage, ...]
    producers: dict[str, tuple[Stage, str]]  # artifact -> (stage that publishes it, store kind)

    @property
    def by_name(self) -> dict[str, Stage]:
        return {s.name: s for s in self.stages}

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for s in self.stages:
            out[s.group] = out.get(s.group, ()) + (s.name,)
        return out

    @property
    def model_artifacts(self) -> tuple[str, ...]:
        return tuple(a for a, (_, kind) in self.producers.items() if kind == MODEL)


def _check(stages: tuple[Stage, ...]) -> dict[str, tuple[Stage, str]]:
    producers: dict[str, tuple[Stage, str]] = {}
    for s in stages:
        bound_elsewhere = set(s.models) | set(s.files) | set(s.external)
        for name in s.inputs:
            if name in bound_elsewhere or name in COMMAND_TABLES or name in producers:
                continue
            raise TypeError(
                f"stage '{s.name}' ({s.module}): input '{name}' is no artifact of an earlier stage and is not declared "
                "in models=, files= or external="
            )
        for name, kind in s.outputs.items():
            if name in producers:
                raise TypeError(f"artifact '{name}' is published by both '{producers[name][0].name}' and '{s.name}'")
            producers[name] = (s, kind)
    groups = {s.group for s in stages}
    clash = groups & {s.name for s in stages}
    if clash:
        raise TypeError(f"group names must differ from stage names: {sorted(clash)}")
    return producers


@lru_cache(maxsize=1)
def graph() -> Graph:
    """The registered stages (imported on first use) and who produces what."""
    stages = tuple(importlib.import_module(m).run.stage for m in STAGE_MODULES)
    return Graph(stages, _check(stages))


def enabled_stages(cfg: Config) -> list[Stage]:
    if cfg.import_model is not None:
        check_store_model_name(cfg.import_model.name, "import_model.name")
    return [s for s in graph().stages if s.enabled(cfg)]


def check_store_model_name(name: str, where: str = "model name") -> str:
    """A name for a model imported into the store that no pipeline model uses (models/grm would pass for the trained
    GRM). Checked here, with the graph, so the import stage's code does not depend on the registry."""
    taken = ("scratch", "base", *graph().model_artifacts)
    if name in taken:
        raise ValueError(f"{where} {name!r} is taken by the pipeline's own models ({', '.join(taken)})")
    return name


def get_stage(name: str) -> Stage:
    try:
        return graph().by_name[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(graph().by_name)}") from None


def select(names: list[str] | None) -> set[str]:
    """Stage names for ``--only``: each a stage or a group name. An unknown name fails, listing both."""
    g = graph()
    out: set[str] = set()
    for n in names or []:
        if n in g.by_name:
            out.add(n)
        elif n in g.groups:
            out.update(g.groups[n])
        else:
            raise ValueError(
                f"unknown stage or group {n!r}; stages: {', '.join(g.by_name)}; groups: {', '.join(g.groups)}"
            )
    return out


def writer_of(artifact: str) -> str:
    """Who publishes an artifact (a stage, or a command), for "run X first" messages."""
    if artifact in COMMAND_TABLES:
        return f"the `{COMMAND_TABLES[artifact]}` command"
    if artifact == "runs":
        return "every `grm run`"
    prod = graph().producers.get(artifact)
    return f"stage '{prod[0].name}'" if prod else "no stage"


def dag_table() -> str:
    """The README's DAG table, one row per stage (tests/test_stages.py checks the README holds it)."""
    lines = ["| stage | group | inputs | outputs | config it reads |", "|---|---|---|---|---|"]
    for s in graph().stages:
        when = "" if s.enabled is always else f" ({(s.enabled.__doc__ or 'conditional').strip()})"
        outputs = ", ".join(f"{kind}/{name}" + ("?" if name in s.optional_outputs else "")
                            for name, kind in s.outputs.items())
        lines.append(
            f"| `{s.name}`{when} | {s.group} | {', '.join(s.describe_inputs()) or '-'} | {outputs} | "
            f"{', '.join(f'`{c}`' for c in s.config)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(dag_table())
