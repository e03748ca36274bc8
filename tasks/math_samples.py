"""Stage `math_samples`: the paper's math data, step one (docs/design.md, "Math data").

Every problem of ``data.math_samples.sources`` (formats math, gsm8k: a question with its ground-truth answer) is
sent to the configured policy, which samples ``n_samples`` solutions (tasks/sampling.py: sharded, resumable, any
generation backend). Each solution's final answer is judged against the ground truth by grm.math_answers as its
shard comes back, in worker processes: math-verify bounds its work with SIGALRM, which only a main thread may
use, and a stage may run in any thread. One row per problem read goes to ``math_samples``; a problem that could
not be read or sampled carries the reason. ``curate`` then pairs a correct with an incorrect solution of each
problem (format sampled_solutions) and quarantines the rest with their reasons.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter, defaultdict
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Mapping, Sequence

from grm.config import Config
from grm.curation import item_meta
from grm.formats.base import TOO_FEW_RESPONSES, TOO_LONG
from grm.formats.importer import ImportResult, import_source
from grm.generation import Request, Result, SamplingParams
from grm.math_answers import grade_batch
from grm.seeds import derive_seed
from storage import ArtifactRef, Store
from tasks.base import StageContext, StageOutput
from tasks.cache_keys import external_data
from tasks.sampling import backend_spec, sample_shards
from tasks.stage import TABLE, stage

GRADING_WORKERS = 4  # at most; fewer on a smaller machine


def problem_files(cfg: Config, store: Store) -> dict[str, ArtifactRef]:
    """files of data.math_samples.sources"""
    return {f"{s.name}:{i}": external_data(s.name, cfg.resolve_path(p))
            for s in cfg.data.math_samples.sources for i, p in enumerate(s.paths)}


def configured(cfg: Config) -> bool:
    """when data.math_samples is set"""
    return cfg.data.math_samples is not None


def problem_rows(imported: ImportResult, model: str) -> tuple[list[dict], list[dict]]:
    """(problems to sample, rows of problems that could not be read) of one source, in the table's schema."""
    base = {"source": imported.stats.source, "split": imported.stats.split, "model": model, "solutions": None}
    problems = []
    for item in imported.items:
        meta = item_meta(item)
        answer = meta.pop("answer")
        meta.pop("kind", None)  # 'reference_solution': the reference itself is not part of the math data
        problems.append({**base, "problem_id": item["item_id"], "subset": item["subset"], "row_ref": None,
                         "conversation": item["conversation"], "reference_answer": str(answer), "error": None,
                         "raw": None, "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)})
    unreadable = [{**base, "problem_id": None, "subset": None, "row_ref": q["row_ref"], "conversation": None,
                   "reference_answer": None, "error": q["reason"], "raw": q["raw"], "meta": None}
                  for q in imported.quarantine]
    return problems, unreadable


def request(problem: Mapping, instruction: str, n: int, seed: int) -> Request:
    """The problem as the policy sees it: its conversation with the instruction after the question."""
    *context, question = problem["conversation"]
    asked = {"role": "user", "content": f"{question['content']}\n\n{instruction}" if instruction else question["content"]}
    return Request(problem["problem_id"], [*context, asked], n, derive_seed(seed, "math_samples", problem["problem_id"]))


def judged(results: Sequence[Result], by_id: Mapping[str, dict], pool: Executor, timeout_s: int) -> list[dict]:
    """Rows of one shard: each problem with its solutions judged (in ``pool``), or the reason it was skipped."""
    todo = [(r.prompt_id, i, s) for r in results if not r.skipped for i, s in enumerate(r.samples)]
    pairs = [(s.text, by_id[pid]["reference_answer"]) for pid, _, s in todo]
    size = max(1, -(-len(pairs) // GRADING_WORKERS))
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    grades = [g for chunk in pool.map(grade_batch, chunks, [timeout_s] * len(chunks)) for g in chunk]
    solutions: dict[str, list[dict]] = defaultdict(list)
    for (pid, i, s), (answer, correct) in zip(todo, grades):
        solutions[pid].append({"sample_idx": i, "seed": s.seed, "text": s.text, "answer": answer, "correct": correct,
                               "finish_reason": s.finish_reason})
    rows = []
    for r in results:
        row = dict(by_id[r.prompt_id])
        if r.skipped:
            row["error"] = f"{TOO_LONG}: {r.skipped}"
        elif not r.samples:
            row["error"] = f"{TOO_FEW_RESPONSES}: the sampler returned no solution"
        else:
            row["solutions"] = solutions.get(r.prompt_id, [])
        rows.append(row)
    return rows


def summary(rows: Sequence[Mapping], imports: Sequence[ImportResult]) -> tuple[str, dict]:
    per: dict[str, Counter] = {s.stats.source: Counter(read=s.stats.read, duplicates=s.stats.duplicates) for s in imports}
    for r in rows:
        c = per[r["source"]]
        if r["error"]:
            c["not sampled"] += 1
            continue
        right = sum(s["correct"] for s in r["solutions"])
        c["solutions"] += len(r["solutions"])
        c["correct"] += right
        c["all correct" if right == len(r["solutions"]) else "all incorrect" if right == 0 else "mixed"] += 1
    lines = ["# math_samples", "", "One row per problem: its sampled solutions judged against the ground truth; curate "
             "pairs the problems with both correct and incorrect solutions.", "",
             "| source | problems read | duplicates | not sampled | mixed | all correct | all incorrect | solutions | "
             "correct % |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, c in per.items():
        pct = 100.0 * c["correct"] / c["solutions"] if c["solutions"] else 0.0
        lines.append(f"| {name} | {c['read']} | {c['duplicates']} | {c['not sampled']} | {c['mixed']} | "
                     f"{c['all correct']} | {c['all incorrect']} | {c['solutions']} | {pct:.1f} |")
    reasons = Counter(r["error"].split(":", 1)[0] for r in rows if r["error"])
    if reasons:
        lines += ["", "Not sampled, by reason: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common())]
    return "\n".join(lines) + "\n", {"sources": {k: dict(v) for k, v in per.items()}, "not_sampled": dict(reasons)}


@stage(group="data", outputs={"math_samples": TABLE},
       config=("seed", "models.dtype", "models.max_length", "models.allow_pickle", "models.trust_remote_code",
               "generation", "data.max_chars", "data.math_samples"),
       models={"sampler": "data.math_samples.sampler"}, external={"problems": problem_files}, enabled=configured)
def run(ctx: StageContext, problems: Mapping[str, ArtifactRef], sampler: ArtifactRef) -> StageOutput:
    cfg = ctx.config
    math = cfg.data.math_samples
    imports = [import_source(s.name, s.format, [cfg.resolve_path(p) for p in s.paths], s.split,
                             max_chars=cfg.data.max_chars, limit=s.limit, hf_split=s.hf_split)
               for s in math.sources]
    model = math.sampler if isinstance(math.sampler, str) else f"{math.sampler.model} at {math.sampler.base_url}"
    to_sample, unreadable = [], []
    for imported in imports:
        ok, bad = problem_rows(imported, model)
        to_sample += ok
        unreadable += bad
    by_id = {p["problem_id"]: p for p in to_sample}
    requests = [request(p, math.instruction, math.n_samples, cfg.seed) for p in to_sample]
    params = SamplingParams(temperature=math.temperature, max_new_tokens=math.max_new_tokens or cfg.generation.max_new_tokens,
                            top_p=cfg.generation.top_p)
    spec = backend_spec(cfg, sampler)  # a folder or hub id on the configured backend, or an endpoint
    workers = max(1, min(GRADING_WORKERS, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        sampled = sample_shards(ctx, "math", "math_samples", requests,
                             lambda results, _: judged(results, by_id, pool, math.check_timeout_s), spec, params)
    with ctx.store.writer("math_samples", **ctx.manifest(shards=sampled.shards)) as w:
        for f in sampled.files:
            w.add_parquet_file(f)
        w.write_rows(unreadable)
    rows = ctx.store.read_rows(w.ref)
    md, metrics = summary(rows, imports)
    return StageOutput({"math_samples": w.ref}, rows_in=sum(i.stats.read for i in imports), rows_out=len(rows),
                       summary_md=md, metrics=metrics)
