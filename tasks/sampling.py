"""Sharded, resumable sampling shared by the stages that generate (rft_sample, rl's too-easy filter,
metarm_data, judge); docs/design.md, "Sampling".

The requests are split into shards of ``generation.shard_size`` prompts. The shards are mapped over the
configured Prefect task runner (threads, or Ray workers); a shard job only generates. As each shard comes
back, its rows are built here (``to_rows``) and written as one Parquet file into the stage's work folder,
atomically. A rerun after a crash or a kill skips the shards whose file exists, so the published table
(one part per shard, in shard order) has no duplicate or missing rows. A failed shard (server down, worker
killed) fails the stage with its message after the other shards have finished and been kept.

A backend is built once per process (threads share it; each Ray worker builds its own) and reused across
shards: engines such as vLLM take tens of seconds to start.

``sample_judgments`` is the training stages' entry: GRM judgments of items planned by
grm.sampling_plan (per-sample shuffled orders, optional hinted sample), scored by Eq. 10.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from grm.config import GenerationConfig
from grm.generation import Backend, Request, Result, SamplingParams, make_backend
from grm.model_loading import ModelTrust
from grm import failpoints, sampling_plan
from grm.sampling_plan import PlannedSample, collect
from grm.prompts import Templates
from storage import ArtifactRef
from storage.store import parquet_rows, read_parquet_rows, write_shard
from tasks.base import StageContext
from tasks.cache_keys import EndpointRef

RowsFn = Callable[[Sequence[Result], Sequence[Request]], list[dict]]


class SamplingError(RuntimeError):
    """Some shards failed; the finished ones are kept for the rerun."""


@dataclass(frozen=True)
class BackendSpec:
    """What a worker process needs to build the backend (picklable, so Ray workers can build their own)."""

    model_path: str
    generation: GenerationConfig
    dtype: str = "auto"
    max_model_len: int | None = None
    trust: ModelTrust = ModelTrust()  # models.allow_pickle / trust_remote_code

    @property
    def key(self) -> str:
        return json.dumps([self.model_path, self.generation.model_dump(mode="json"), self.dtype, self.max_model_len,
                           self.trust.as_dict()], sort_keys=True)


def backend_spec(cfg, model: ArtifactRef) -> BackendSpec:
    """How to sample from a model input (``cfg``: the config or a stage's view of it): a folder with the
    configured backend, or a model behind an OpenAI-compatible endpoint (rft.sampler, rl.easy_filter_model)
    with the openai backend pointed at it, whatever generation.backend says."""
    if not isinstance(model, EndpointRef):
        return BackendSpec(model.path, cfg.generation, dtype=cfg.models.dtype, max_model_len=cfg.models.max_length,
                           trust=ModelTrust.of(cfg.models))
    ep, gen = model.endpoint, cfg.generation
    client = gen.openai.model_copy(update={"base_url": ep.base_url, "model": ep.model, "api_key_env": ep.api_key_env, "serve": False})
    return BackendSpec(ep.model, gen.model_copy(update={"backend": "openai", "openai": client}))


_BACKENDS: dict[str, Backend] = {}
_BACKENDS_LOCK = threading.Lock()


def backend_for(spec: BackendSpec) -> Backend:
    """This process's backend for ``spec``, built on first use."""
    with _BACKENDS_LOCK:
        b = _BACKENDS.get(spec.key)
        if b is None:
            b = _BACKENDS[spec.key] = make_backend(spec.model_path, spec.generation, dtype=spec.dtype, max_model_len=spec.max_model_len,
                                                   trust=spec.trust)
        return b


def close_backends() -> None:
    """Close this process's backends (engines, servers, child workers)."""
    with _BACKENDS_LOCK:
        backends = list(_BACKENDS.values())
        _BACKENDS.clear()
    for b in backends:
        b.close()


def generate_shard(spec: BackendSpec, requests: list[Request], params: SamplingParams) -> dict:
    """The job run on a task runner worker: generate one shard (timed, for the shard log)."""
    started = time.time()
    results = backend_for(spec).generate(requests, params)
    return {"results": results, "started": started, "ended": time.time(), "pid": os.getpid()}


def planned_rows(planned: Sequence[PlannedSample], items_by_id: dict, **constant) -> RowsFn:
    """``to_rows`` for sampling plans (grm.sampling_plan.plan): ``collect`` for the shard's planned samples, plus
    constant columns (e.g. model='grm', decoding='sample')."""
    by_request: dict[str, list[PlannedSample]] = {}
    for p in planned:
        by_request.setdefault(p.request_id, []).append(p)

    def to_rows(results: Sequence[Result], requests: Sequence[Request]) -> list[dict]:
        mine = [p for r in requests for p in by_request.get(r.prompt_id, [])]
        rows = collect(results, requests, mine, items_by_id)
        return [{**row, **constant} for row in rows]

    return to_rows


def _shard_digest(requests: Sequence[Request], params: SamplingParams) -> str:
    h = hashlib.sha256(json.dumps([params.temperature, params.max_new_tokens, params.top_p]).encode())
    for r in requests:
        h.update(json.dumps([r.prompt_id, r.n, r.seed, list(map(dict, r.messages))], sort_keys=True).encode())
    return h.hexdigest()[:16]


@dataclass
class ShardRun:
    files: list[Path]  # one finished Parquet file per shard, in shard order
    shards: int
    shards_sampled: int  # in this run (the others were done by an earlier, interrupted run)
    rows: int
    skipped_prompts: int
    seconds: float
    shard_log: list[dict] = field(default_factory=list)


@dataclass
class SamplingOutcome(ShardRun):
    ref: ArtifactRef | None = None  # the published table


def sample_shards(
    ctx: StageContext,
    name: str,
    table: str,
    requests: Sequence[Request],
    to_rows: RowsFn,
    spec: BackendSpec,
    params: SamplingParams,
    *,
    close: bool = True,
) -> ShardRun:
    """Sample every request in resumable shards; each finished shard is a Parquet file (``table``'s schema) in
    the stage's work folder. ``name`` keeps the shards of different sampling calls of one stage apart (e.g.
    'grm-sample'); ``close=False`` keeps this process's backend for a following call with the same model."""
    t0 = time.time()
    gen = spec.generation
    work = ctx.work_dir() / f"sampling-{name}"
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "shards.jsonl"
    size = gen.shard_size
    shards = [list(requests[i : i + size]) for i in range(0, len(requests), size)]
    files = [work / f"shard-{i:05d}-{_shard_digest(s, params)}.parquet" for i, s in enumerate(shards)]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    ctx.logger.info("sampling %s: %d prompts in %d shards, %d to do", name, len(requests), len(shards), len(todo))

    failures: list[str] = []
    log: list[dict] = []
    jobs = [(spec, shards[i], params) for i in todo]
    done = len(shards) - len(todo)
    try:
        for j, out, err in ctx.map_jobs(generate_shard, jobs, gen.task_runner, name=f"sample-{name}"):
            i = todo[j]
            if err is not None:
                failures.append(f"shard {i} ({len(shards[i])} prompts): {type(err).__name__}: {err}")
                continue
            rows = to_rows(out["results"], shards[i])
            write_shard(files[i], table, rows)
            failpoints.reached("sampling.shard", name)
            entry = {
                "shard": i,
                "prompts": len(shards[i]),
                "rows": len(rows),
                "skipped_prompts": sum(1 for r in out["results"] if r.skipped),
                "started": out["started"],
                "ended": out["ended"],
                "pid": out["pid"],
            }
            log.append(entry)
            with open(log_path, "a") as f:  # one short line per finished shard
                f.write(json.dumps(entry) + "\n")
            done += 1
            ctx.report_progress(done, len(shards))
    finally:
        if close:
            close_backends()
    if failures:
        ok = len(shards) - len(failures)
        raise SamplingError(
            f"sampling {name}: {len(failures)} of {len(shards)} shards failed ({ok} finished and kept; rerun to "
            "resume):\n  " + "\n  ".join(failures)
        )
    rows = sum(parquet_rows(f) for f in files)
    return ShardRun(files, len(shards), len(todo), rows, _skipped_prompts(log_path, len(shards)), time.time() - t0, log)


def sample_table(
    ctx: StageContext,
    name: str,
    table: str,
    requests: Sequence[Request],
    to_rows: RowsFn,
    spec: BackendSpec,
    params: SamplingParams,
    *,
    close: bool = True,
    **manifest_extra,
) -> SamplingOutcome:
    """``sample_shards``, then publish ``table`` from the shard files (one part per shard)."""
    run = sample_shards(ctx, name, table, requests, to_rows, spec, params, close=close)
    with ctx.store.writer(table, **ctx.manifest(sampling=name, shards=run.shards, **manifest_extra)) as w:
        for f in run.files:
            w.add_parquet_file(f)
    return SamplingOutcome(**{**vars(run), "rows": w.rows}, ref=w.ref)


def _skipped_prompts(log_path, n_shards: int) -> int:
    """Over-long prompts of every shard, this run's and earlier runs' (the last entry of a shard counts)."""
    last: dict[int, int] = {}
    for line in log_path.read_text().splitlines() if log_path.exists() else []:
        e = json.loads(line)
        if e["shard"] < n_shards:
            last[e["shard"]] = e["skipped_prompts"]
    return sum(last.values())


def sample_judgments(
    ctx: StageContext,
    model: ArtifactRef,
    items: Sequence[Mapping],
    *,
    k: int,
    temperature: float,
    tag: str,
    hinted: bool = False,
) -> list[dict]:
    """k shuffled non-hinted samples per item (plus one hinted sample when asked), scored by Eq. 10: the rows
    of grm.sampling_plan, with the columns the training stages use."""
    cfg = ctx.config
    requests, planned = sampling_plan.plan(
        items, k=k, seed=cfg.seed, templates=Templates.configured(cfg), tag=tag, hinted=hinted, single_mode="binary"
    )
    if not requests:
        return []
    params = SamplingParams(temperature=temperature, max_new_tokens=cfg.generation.max_new_tokens, top_p=cfg.generation.top_p)
    ctx.logger.info("%s: sampling %d requests (%d samples) with %s", ctx.stage, len(requests), len(planned), model.path)
    spec = backend_spec(cfg, model)
    by_id = {i["item_id"]: i for i in items}
    # shards hold rft_samples' columns (a superset of grm.sampling_plan's rows); the stage decides acceptance after
    run = sample_shards(ctx, tag, "rft_samples", requests, planned_rows(planned, by_id), spec, params)
    keep = ("item_id", "sample_idx", "hinted", "seed", "permutation", "prompt", "completion", "scores", "parse_status",
            "principles", "critique", "correct")
    return [{k: row[k] for k in keep} for f in run.files for row in read_parquet_rows(f)]
