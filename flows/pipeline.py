"""Prefect wiring of the SPCT DAG (docs/design.md, "The DAG"): one cached task per stage, chained in order.

``spct_pipeline`` runs every enabled stage, or those named by ``only`` (stages or groups, tasks/stages.py)
on the artifacts already in the store. A stage is skipped (state ``Cached``) when its cache key - config
section, input content hashes, code version, library versions - is unchanged; ``force`` reruns named stages
regardless.
"""

from __future__ import annotations

import time
import uuid

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

import flows.temporary_server  # noqa: F401  (Prefect's temporary server stops when this process is gone)
from flows.progress import StageProgress
from flows.results import StageOutputSerializer, stage_result_options
from grm import cpu_numerics
from grm.config import Config, load_config
from storage import Store
from tasks.base import StageOutput
from tasks.runner import (PreparedStage, RunRecord, cached_outputs_present, execute, in_store, now, prepare, record_runs,
                          timer)
from flows.shard_map import map_jobs
from tasks.stages import enabled_stages, graph, select

def _stage_key(context, parameters) -> str:
    return parameters["prepared"].cache_key


@task(cache_key_fn=_stage_key, persist_result=True, result_serializer=StageOutputSerializer())
def run_stage(prepared: PreparedStage, config: Config, store_root: str, bar: StageProgress | None = None) -> StageOutput:
    logger = get_run_logger()
    name = prepared.spec.name
    artifact_id = create_progress_artifact(progress=0.0, key=f"{name.replace('_', '-')}-progress")

    def progress(done: int, total: int) -> None:
        pct = 100.0 * done / max(total, 1)
        update_progress_artifact(artifact_id, progress=pct)
        if bar is not None:
            bar.update(name, done, total)

    out = execute(prepared, config, Store(store_root), logger=logger, progress=progress, map_jobs=map_jobs)
    update_progress_artifact(artifact_id, progress=100.0)
    create_markdown_artifact(
        markdown=out.summary_md or f"**{name}**: {out.rows_in} rows in, {out.rows_out} rows out",
        key=f"{name.replace('_', '-')}-summary",
        description=f"{name}: what this stage produced",
    )
    logger.info("%s: %d rows in, %d rows out", name, out.rows_in, out.rows_out)
    return out


def _run(config_path: str, store: str | None, only: list[str] | None, force: list[str] | None,
         overrides: list[str] | None = None) -> dict:
    cfg = load_config(config_path, overrides)
    cpu_numerics.apply(cfg.models.cpu_numerics)  # a flow started without `grm run` (a deployment): pin, or refuse
    st = Store.resolve(store)
    logger = get_run_logger()
    wanted = select(only)  # an unknown stage or group name fails here, before any work
    forced = select(force)
    specs = [s for s in enabled_stages(cfg) if not wanted or s.name in wanted]
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    produced, records, states = {}, [], {}
    bar = StageProgress()
    try:
        for spec in specs:
            prepared = prepare(spec, cfg, st, produced)
            # rerun (and overwrite the cached result) when forced, or when this store has no intact output of the key
            rerun = spec.name in forced or not cached_outputs_present(st, spec.name, prepared.cache_key, logger)
            started, elapsed = now(), timer()
            state = run_stage.with_options(name=spec.name, refresh_cache=rerun, **stage_result_options(st))(
                prepared, cfg, str(st.root), bar, return_state=True
            )
            out: StageOutput = in_store(state.result(), st)  # a moved store: its own copies of the artifacts
            states[spec.name] = state.name
            produced.update(out.artifacts)
            records.append(
                RunRecord(spec.name, started, elapsed(), state.name == "Cached", out.rows_in, out.rows_out,
                          [r.short for r in out.artifacts.values()], prepared.cache_key)
            )
            logger.info("stage %s: %s in %.1fs", spec.name, state.name, records[-1].seconds)
    finally:
        bar.close()
        if records:
            record_runs(st, run_id, records)
    return {"run_id": run_id, "states": states, "artifacts": {k: v.short for k, v in produced.items() if k in graph().producers}}


@flow(name="spct-pipeline", log_prints=True)
def spct_pipeline(config: str = "configs/tiny.yaml", store: str | None = None, only: list[str] | None = None,
                  force: list[str] | None = None, overrides: list[str] | None = None,
                  lock_wait_s: float = 600.0) -> dict:
    """The DAG: (math_samples) -> curate -> (bootstrap) -> rft_sample -> rft_train -> rl -> metarm_data ->
    metarm_train -> judge -> evaluate. ``only``: stages or groups (data, train, metarm, evaluation) to run, on the store's artifacts.
    The run holds the store's lock, waiting up to ``lock_wait_s`` for another writer (a scheduled run overlapping
    a manual one) before it fails naming that writer."""
    with Store.resolve(store).lock(f"flow spct-pipeline only={only or 'all'}", wait_s=lock_wait_s, on_wait=print):
        return _run(config, store, only, force, overrides)
