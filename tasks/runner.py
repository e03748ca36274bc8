"""Preparing and running one stage: its inputs, its cache key, its context, and the `runs` bookkeeping.

Orchestrator-neutral: the Prefect flow calls ``prepare`` to get the cache key and ``execute`` inside the
cached task; tests and scripts can call them directly.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from grm.config import Config
from storage import ArtifactRef, NoArtifact, Store
from tasks.base import StageContext, StageOutput
from tasks.cache_keys import code_version, file_fingerprint, model_fingerprint, stage_key
from tasks.stages import PRODUCERS, StageSpec


class MissingInput(RuntimeError):
    pass


def _external(name: str, path: str, fingerprint: str) -> ArtifactRef:
    return ArtifactRef("external", name, path, fingerprint)


def resolve_inputs(spec: StageSpec, cfg: Config, store: Store, produced: Mapping[str, ArtifactRef]) -> dict[str, ArtifactRef]:
    """Each input named by the spec: produced earlier in this run, else the newest artifact in the store,
    else (for external inputs) the configured file or model, fingerprinted."""
    out: dict[str, ArtifactRef] = {}
    for name in spec.inputs(cfg):
        if name == "sources":
            for src in cfg.data.sources:
                for i, p in enumerate(src.paths):
                    path = cfg.resolve_path(p)
                    fp = file_fingerprint(path) if Path(path).exists() else model_fingerprint(path)
                    out[f"source:{src.name}:{i}"] = _external(src.name, path, fp)
            continue
        if name == "general_data":
            path = cfg.resolve_path(cfg.rft.general_data)
            out[name] = _external(name, path, file_fingerprint(path))
            continue
        if name in ("base", "metarm_base"):
            model = cfg.models.base if name == "base" else (cfg.models.metarm_base or cfg.models.base)
            made_here = ("scratch",) if name == "base" else ("scratch", "rft", "grm")  # models this pipeline makes
            if model not in made_here:  # a folder or hub id
                path = cfg.resolve_path(model)
                out[name] = _external(name, path, model_fingerprint(path))
                continue
            name_in_store = "base" if model == "scratch" else model
        else:
            name_in_store = name
        stage, kind, artifact = PRODUCERS[name_in_store]
        ref = produced.get(name_in_store) or store.newest(kind, artifact)
        if ref is None:
            raise MissingInput(
                f"stage '{spec.name}' needs '{name_in_store}', which has no artifact in store {store.root}: "
                f"run stage '{stage}' first (or the whole pipeline)"
            )
        out[name] = ref
    return out


@dataclass
class PreparedStage:
    spec: StageSpec
    inputs: dict[str, ArtifactRef]
    cache_key: str
    config_hash: str
    code: str


def prepare(spec: StageSpec, cfg: Config, store: Store, produced: Mapping[str, ArtifactRef]) -> PreparedStage:
    inputs = resolve_inputs(spec, cfg, store, produced)
    code = code_version(spec.module)
    key, config_hash = stage_key(spec.name, cfg, spec.sections, inputs, code, str(store.root))
    return PreparedStage(spec, inputs, key, config_hash, code)


def _index_path(store: Store, stage: str, key: str) -> Path:
    return store.work_dir("_cache", stage) / f"{key}.json"


def cached_outputs_present(store: Store, stage: str, key: str) -> bool:
    """False when a previous run with this key published artifacts that are gone since (then rerun)."""
    p = _index_path(store, stage, key)
    if not p.is_file():
        return True  # nothing recorded: let the orchestrator's cache decide
    paths = json.loads(p.read_text())["paths"]
    return all(Path(x).exists() for x in paths)


def execute(
    prepared: PreparedStage,
    cfg: Config,
    store: Store,
    *,
    logger: logging.Logger | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StageOutput:
    ctx = StageContext(
        stage=prepared.spec.name,
        store=store,
        config=cfg,
        inputs=prepared.inputs,
        cache_key=prepared.cache_key,
        config_hash=prepared.config_hash,
        code_version=prepared.code,
        logger=logger or logging.getLogger(f"grm.{prepared.spec.name}"),
        progress=progress,
    )
    module = importlib.import_module(prepared.spec.module)
    out = module.run(ctx)
    _index_path(store, prepared.spec.name, prepared.cache_key).write_text(
        json.dumps({"paths": [r.path for r in out.artifacts.values()]})
    )
    return out


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
