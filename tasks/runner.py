"""Preparing and running one stage: its inputs, its cache key, its context, and the `runs` bookkeeping.

Orchestrator-neutral: the Prefect flow calls ``prepare`` to get the cache key and ``execute`` inside the
cached task; tests and scripts can call them directly.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from grm.config import Config, EndpointConfig
from storage import ArtifactRef, Store, StoreError
from tasks.base import MapJobs, StageContext, StageOutput, map_serially, stage_work_dir
from tasks.cache_keys import code_version, endpoint_model, external_data, external_model, stage_key
from tasks.config_view import ConfigView
from tasks.stage import TABLE, Stage
from tasks.stages import COMMAND_TABLES, get_stage, graph, writer_of


class MissingInput(RuntimeError):
    pass


def model_reference(cfg: Config, value: str) -> str | None:
    """The pipeline model a config value names ('scratch': the bootstrapped base; 'base': whatever models.base
    names; 'rft', 'grm', ...: that stage's model), or None for a folder or hub id."""
    if value == "base":
        value = cfg.models.base
    if value == "scratch":
        return "base"
    return value if value in graph().model_artifacts else None


def _config_value(cfg: Config, path: str):
    node = cfg
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _artifact(name: str, store: Store, produced: Mapping[str, ArtifactRef]) -> ArtifactRef | None:
    if name in produced:
        return produced[name]
    kind = TABLE if name in COMMAND_TABLES else graph().producers[name][1]
    return store.newest(kind, name)


def _model(spec: Stage, cfg: Config, value: str | EndpointConfig, store: Store,
           produced: Mapping[str, ArtifactRef]) -> ArtifactRef:
    if isinstance(value, EndpointConfig):
        return endpoint_model(value)
    name = model_reference(cfg, value)
    if name is None:
        folder = cfg.models.base if value == "base" else value  # 'base' names whatever models.base names
        return imported_model(spec, cfg, folder, store) or external_model(folder, cfg.resolve_path(folder))
    ref = _artifact(name, store, produced)
    if ref is None:
        raise MissingInput(
            f"stage '{spec.name}' needs model '{name}', which has no artifact in store {store.root}: run "
            f"{writer_of(name)} first (or the whole pipeline)"
        )
    return ref


def imported_model(spec: Stage, cfg: Config, value: str, store: Store) -> ArtifactRef | None:
    """The store model a plain name that is no folder names (`grm models import`, stage import_model), or None
    (then it is a hub id). A name the config's import_model will publish must be in the store by now."""
    if "/" in value or Path(cfg.resolve_path(value)).exists():
        return None
    ref = store.newest("models", value)
    if ref is None and cfg.import_model is not None and cfg.import_model.name == value:
        raise MissingInput(f"stage '{spec.name}' needs model '{value}', which has no artifact in store {store.root}: "
                           "run stage 'import_model' first (or the whole pipeline)")
    return ref


def resolve_inputs(spec: Stage, cfg: Config, store: Store, produced: Mapping[str, ArtifactRef]) -> dict[str, Any]:
    """Each of the stage's inputs, by parameter name: produced earlier in this run, else the newest artifact in
    the store; models and files named by the config; external inputs by their declared resolver. An optional
    input whose ``when`` is false (or whose file is not configured, or whose command table is absent) is None."""
    out: dict[str, Any] = {}
    for name in spec.inputs:
        if name in spec.when and not spec.when[name](cfg):
            out[name] = None
        elif name in spec.external:
            out[name] = spec.external[name](cfg, store)
        elif name in spec.files:
            value = _config_value(cfg, spec.files[name])
            out[name] = external_data(name, cfg.resolve_path(value)) if value else None
        elif name in spec.models:
            paths = spec.models[name]
            values = [_config_value(cfg, p) for p in ((paths,) if isinstance(paths, str) else paths)]
            value = next(v for v in values if v)  # the first one set
            if isinstance(value, (list, tuple)):
                out[name] = {v: _model(spec, cfg, v, store, produced) for v in dict.fromkeys(value)}
            else:
                out[name] = _model(spec, cfg, value, store, produced)
        else:
            ref = _artifact(name, store, produced)
            if ref is None and name not in spec.optional:
                raise MissingInput(
                    f"stage '{spec.name}' needs '{name}', which has no artifact in store {store.root}: run "
                    f"{writer_of(name)} first (or the whole pipeline)"
                )
            out[name] = ref
    return out


def input_refs(inputs: Mapping[str, Any]) -> dict[str, ArtifactRef]:
    """The inputs flattened to named artifact references (for cache keys and manifests)."""
    refs: dict[str, ArtifactRef] = {}
    for name, value in inputs.items():
        if isinstance(value, ArtifactRef):
            refs[name] = value
        elif isinstance(value, Mapping):
            refs.update({f"{name}:{k}": v for k, v in value.items()})
    return refs


@dataclass
class PreparedStage:
    spec: Stage
    inputs: dict[str, Any]
    cache_key: str
    config_hash: str
    code: str

    def work_dir(self, store: Store) -> Path:
        return stage_work_dir(store, self.spec.name, self.cache_key)


def prepare(spec: Stage, cfg: Config, store: Store, produced: Mapping[str, ArtifactRef]) -> PreparedStage:
    inputs = resolve_inputs(spec, cfg, store, produced)
    code = code_version(spec.module)
    key, config_hash = stage_key(spec.name, cfg, spec.config, input_refs(inputs), code)
    return PreparedStage(spec, inputs, key, config_hash, code)


def _index_path(store: Store, stage: str, key: str) -> Path:
    return store.work_dir("_cache", stage) / f"{key}.json"


def cached_outputs_present(store: Store, stage: str, key: str, logger: logging.Logger | None = None) -> bool:
    """Whether a cached result of this key may be used on this store: a run of it completed on this store (its
    index, kept in the store, moves with it) and every artifact it published is here and intact. False (then
    the stage reruns) when nothing is recorded, so a cache shared by mistake with another store is never used,
    and when an artifact was deleted or is corrupt (the reason is logged)."""
    try:
        index = json.loads(_index_path(store, stage, key).read_text())
        locations = index["artifacts"] if "artifacts" in index else index["paths"]  # "paths": older, absolute
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for location in locations:
        try:
            store.artifact(location)
        except StoreError as e:
            (logger or logging.getLogger("grm.runner")).warning("stage %s: rebuilding, its cached output is bad: %s",
                                                                stage, e)
            return False
    return True


def in_store(out: StageOutput, store: Store) -> StageOutput:
    """A (cached) stage output whose references point into ``store``: one recorded before the store was moved
    or copied names the same artifacts at their old place."""
    return replace(out, artifacts={k: store.rebase(v) for k, v in out.artifacts.items()})


def execute(
    prepared: PreparedStage,
    cfg: Config,
    store: Store,
    *,
    logger: logging.Logger | None = None,
    progress: Callable[[int, int], None] | None = None,
    map_jobs: MapJobs | None = None,
) -> StageOutput:
    spec = prepared.spec
    ctx = StageContext(
        stage=spec.name,
        store=store,
        config=ConfigView(cfg, spec.config, spec.name),  # type: ignore[arg-type]
        inputs=input_refs(prepared.inputs),
        cache_key=prepared.cache_key,
        config_hash=prepared.config_hash,
        code_version=prepared.code,
        logger=logger or logging.getLogger(f"grm.{prepared.spec.name}"),
        progress=progress,
        map_jobs=map_jobs or map_serially,
    )
    out = spec.run(ctx, **prepared.inputs)
    missing = [a for a in spec.outputs if a not in out.artifacts and a not in spec.optional_outputs]
    if missing:
        raise RuntimeError(f"stage '{spec.name}' did not publish {missing}")
    _index_path(store, prepared.spec.name, prepared.cache_key).write_text(
        json.dumps({"artifacts": [store.location(r) for r in out.artifacts.values()]})  # relative: the store may move
    )
    return out


def run_stage(name: str, cfg: Config, store: Store, produced: Mapping[str, ArtifactRef] | None = None,
              **execute_options) -> StageOutput:
    """Prepare and execute one stage outside any orchestrator (tests, scripts): its inputs from ``produced``,
    else from the store."""
    return execute(prepare(get_stage(name), cfg, store, produced or {}), cfg, store, **execute_options)


@dataclass
class RunRecord:
    stage: str
    started_at: datetime
    seconds: float
    cache_hit: bool
    rows_in: int
    rows_out: int
    artifacts: list[str] = field(default_factory=list)
    cache_key: str = ""


def record_runs(store: Store, run_id: str, records: list[RunRecord]) -> ArtifactRef:
    """Append this run's stage records to the `runs` table (a new artifact: previous rows + these)."""
    prev = store.table("runs")
    rows = store.read_rows(prev) if prev else []
    rows += [
        {
            "run_id": run_id,
            "stage": r.stage,
            "started_at": r.started_at,
            "seconds": r.seconds,
            "cache_hit": r.cache_hit,
            "rows_in": r.rows_in,
            "rows_out": r.rows_out,
            "artifact": ", ".join(r.artifacts),
            "cache_key": r.cache_key,
        }
        for r in records
    ]
    return store.write_table("runs", rows, extra={"run_id": run_id})


def now() -> datetime:
    return datetime.now(timezone.utc)


def timer() -> Callable[[], float]:
    t0 = time.perf_counter()
    return lambda: time.perf_counter() - t0
