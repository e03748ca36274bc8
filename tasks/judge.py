"""Stage `judge`: judgments of the eval items, for evaluation with inference-time scaling.

Every configured model (judge.models: base / rft / grm) judges each eval item greedily; the models of
judge.voting_models (the trained GRM by default; the RFT model too for the paper's Table 6) also draw
judge.k_max samples at judge.temperature, each with its own shuffled response order (grm.sampling_plan).
With a meta RM, every parsed sample of the trained GRM gets its meta score. One `judgments` artifact holds it
all; `evaluate` computes greedy, voting@k and metaRM@k from it (smaller k reuse the first k samples).
"""

from __future__ import annotations

from grm import sampling_plan
from grm.curation import item_meta
from grm.evaluation.protocols import benchmark_of, protocol
from grm.generation import SamplingParams
from grm.training.examples import metarm_text
from grm.prompts import Templates
from storage import ArtifactRef
from storage.store import read_parquet_rows
from tasks.base import StageContext, StageOutput
from tasks.sampling import backend_spec, planned_rows, sample_shards
from tasks.stage import MODEL_SECTIONS, TABLE, stage


def _meta_scores(ctx: StageContext, metarm: ArtifactRef, rows: list[dict], items: dict, tpl) -> int:
    """Fill ``meta_score`` of the parsed samples with the meta RM's logit, and ``meta_truncated`` with whether
    the meta RM's input had to be cut to metarm.max_length; returns how many were cut."""
    from grm.model_loading import ModelTrust
    from grm.reward import HFMetaScorer

    cfg = ctx.config
    parsed = [r for r in rows if r["scores"] is not None]
    if not parsed:
        return 0
    scorer = HFMetaScorer(metarm.path, device=cfg.generation.device, max_length=cfg.metarm.max_length,
                          batch_size=cfg.generation.batch_size, trust=ModelTrust.of(cfg.models))
    texts = [metarm_text(items[r["item_id"]], r["permutation"], r["completion"], tpl) for r in parsed]
    scores, cut = scorer.score(texts)
    for r, s, c in zip(parsed, scores, cut):
        r["meta_score"], r["meta_truncated"] = s, c
    return sum(cut)


def _first_per_subset(items: list[dict], n: int) -> list[dict]:
    """At most n prompts per (source, subset), each with all its items: RM-Bench's nine style pairs of a prompt
    (meta.prompt_id) are scored together, so taking some of them would leave its 3x3 accuracy undefined."""
    taken: dict[tuple[str, str], set[str]] = {}
    out = []
    for i in items:
        prompts = taken.setdefault((i["source"], i["subset"]), set())
        prompt = str(item_meta(i).get("prompt_id", i["item_id"]))
        if prompt in prompts or len(prompts) < n:
            prompts.add(prompt)
            out.append(i)
    return out


def _two_games(item: dict) -> bool:
    """Items whose benchmark's harness judges each pair in both orders (JudgeBench)."""
    return protocol(benchmark_of(item["source"] or "", item["format"])).two_games


@stage(group="evaluation", outputs={"judgments": TABLE}, config=MODEL_SECTIONS + ("judge", "metarm.max_length"),
       models={"models": "judge.models", "voting": "judge.voting_models", "metarm": "judge.meta_rm"},
       when={"metarm": lambda cfg: cfg.judge.meta_scores})
def run(ctx: StageContext, items: ArtifactRef, models: dict[str, ArtifactRef], voting: dict[str, ArtifactRef],
        metarm: ArtifactRef | None = None) -> StageOutput:
    cfg, gen = ctx.config, ctx.config.generation
    items = [r for r in ctx.store.read_rows(items) if r["split"] == "eval"]
    if cfg.judge.per_subset:
        items = _first_per_subset(items, cfg.judge.per_subset)
    if cfg.judge.max_items:
        items = items[: cfg.judge.max_items]
    if not items:
        raise ValueError("judge: `items` has no eval items (configure an eval source or data.miniworld)")
    by_id = {i["item_id"]: i for i in items}
    tpl = Templates.configured(cfg)
    plan = dict(seed=cfg.seed, templates=tpl, single_mode=cfg.prompts.single_eval)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=gen.max_new_tokens)
    sampled = SamplingParams(temperature=cfg.judge.temperature, max_new_tokens=gen.max_new_tokens, top_p=gen.top_p)

    parts, sample_files, stats = [], {}, {}
    for name in dict.fromkeys([*cfg.judge.voting_models, *cfg.judge.models]):
        spec = backend_spec(cfg, models.get(name) or voting[name])
        if name in cfg.judge.models:
            reqs, planned = sampling_plan.plan(items, k=1, tag=f"judge:{name}:greedy", both_orders=_two_games, **plan)
            run_g = sample_shards(ctx, f"{name}-greedy", "judgments", reqs,
                                  planned_rows(planned, by_id, model=name, decoding="greedy"), spec, greedy,
                                  close=name not in cfg.judge.voting_models)
            parts += run_g.files
            stats[f"{name} greedy"] = run_g
        if name in cfg.judge.voting_models:
            reqs, planned = sampling_plan.plan(items, k=cfg.judge.k_max, tag=f"judge:{name}", **plan)
            run_s = sample_shards(ctx, f"{name}-sample", "judgments", reqs,
                                  planned_rows(planned, by_id, model=name, decoding="sample"), spec, sampled)
            sample_files[name] = run_s.files
            stats[f"{name} k={cfg.judge.k_max} at T={cfg.judge.temperature}"] = run_s

    meta_cut = 0
    with ctx.store.writer("judgments", **ctx.manifest(k_max=cfg.judge.k_max, models=list(cfg.judge.models))) as w:
        for f in parts:
            w.add_parquet_file(f)
        for name, files in sample_files.items():
            for f in files:
                rows = read_parquet_rows(f)
                if metarm is not None and name == cfg.judge.meta_guides:  # the GRM the meta RM was trained for
                    meta_cut += _meta_scores(ctx, metarm, rows, by_id, tpl)
                w.write_rows(rows)
    lines = [f"**judge**: {len(items)} eval items -> {w.rows} judgments", "", "| part | prompts | rows | skipped prompts | seconds |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {sum(e['prompts'] for e in r.shard_log)} | {r.rows} | {r.skipped_prompts} | {r.seconds:.1f} |"
              for k, r in stats.items()]
    if metarm is not None:
        lines += ["", f"Meta RM inputs cut to metarm.max_length {cfg.metarm.max_length} (middle of the longest response): "
                  f"{meta_cut} (judgments.meta_truncated)."]
    return StageOutput({"judgments": w.ref}, rows_in=len(items), rows_out=w.rows, summary_md="\n".join(lines))
