"""What every stage receives and returns (docs/design.md, "Stages").

A stage is ``run(ctx: StageContext, <inputs>...) -> StageOutput`` in ``tasks/<stage>.py``, declared with
``@stage`` (tasks/stages.py): it reads its input artifacts through ``ctx.store``, calls the core (``grm``),
and writes its outputs with ``ctx.manifest()`` so that each records its config hash, input hashes and code
version. The flow (``flows/pipeline.py``) wraps each stage as a cached Prefect task and hands in its task
runner as ``ctx.map_jobs``; stages never import Prefect or ``flows`` themselves, so they run (and are tested)
without an orchestrator.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from pydantic import TypeAdapter

from grm.config import Config
from storage import ArtifactRef, Store


# map_jobs(fn, jobs, task_runner_config, name=...) -> (index, value, error) per job, in the order they finish;
# a failing job does not stop the others. flows/shard_map.py maps over Prefect's task runner (threads or Ray).
MapJobs = Callable[..., Iterator[tuple[int, Any, BaseException | None]]]


def map_serially(fn: Callable[..., Any], jobs: Sequence[tuple], task_runner: Any = None, *, name: str = "") -> Iterator[
        tuple[int, Any, BaseException | None]]:
    """``MapJobs`` in this process, one job after another: the default outside a flow."""
    for i, job in enumerate(jobs):
        try:
            value = fn(*job)
        except Exception as e:  # handed back like a failed task run; the caller keeps the finished ones
            yield i, None, e
        else:
            yield i, value, None


@dataclass
class StageContext:
    stage: str
    store: Store
    config: Config
    inputs: dict[str, ArtifactRef] = field(default_factory=dict)
    cache_key: str = "nocache"
    config_hash: str = ""
    code_version: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("grm"))
    progress: Callable[[int, int], None] | None = None  # (done, total): terminal bar + Prefect UI
    map_jobs: MapJobs = map_serially  # how shard jobs run (the flow hands in Prefect's task runner)

    def report_progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def manifest(self, **extra: Any) -> dict:
        """Keyword arguments for the store's writers: provenance recorded in every artifact manifest."""
        return {
            "config_hash": self.config_hash,
            "input_hashes": {k: v.content_hash for k, v in self.inputs.items()},
            "code_version": self.code_version,
            "extra": {"stage": self.stage, "cache_key": self.cache_key, **extra},
        }

    def work_dir(self) -> Path:
        return stage_work_dir(self.store, self.stage, self.cache_key)


def stage_work_dir(store: Store, stage: str, cache_key: str) -> Path:
    """Scratch space that survives a crash of one stage run (finished shards, checkpoints): a rerun with the
    same cache key finds it again."""
    return store.work_dir(stage, cache_key[:24])


@dataclass
class StageOutput:
    artifacts: dict[str, ArtifactRef]
    rows_in: int = 0
    rows_out: int = 0
    summary_md: str = ""  # shown as a markdown artifact in the Prefect UI
    metrics: dict[str, Any] = field(default_factory=dict)

    # The stage cache holds this as plain JSON (docs/design.md, "Caching"): it is only references and counts, so
    # loading a cached result builds these two classes and nothing else (no pickle, no class named by the file).
    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_json_value, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "StageOutput":
        """A StageOutput from ``to_json``'s text; a ValueError (pydantic's) for anything else."""
        return _STAGE_OUTPUT.validate_json(text)


def _json_value(value: Any) -> Any:
    """Metrics may hold numpy scalars or paths: their plain JSON value."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"a stage metric of type {type(value).__name__} cannot be stored as JSON")


_STAGE_OUTPUT = TypeAdapter(StageOutput)
