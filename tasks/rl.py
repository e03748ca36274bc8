"""rl: rule-based online RL (TRL GRPO) from ``models/rft`` -> ``models/grm`` and ``rl_log``.

Items too easy for rl.easy_filter_model (the RFT model by default; the paper used a separate small chat
model) are dropped first: it gets them right in all rl.easy_filter_samples samples. Each GRPO prompt shows the responses in a seeded order of its own
(grm.training.examples.grpo_rows).
"""

from __future__ import annotations

import json
from collections import defaultdict

from grm import rules
from grm.training.examples import draws_per_item, grpo_rows, trainable
from grm.training.grpo import read_rl_log
from grm.training.launch import clear_checkpoints

from grm.prompts import Templates
from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.models import model_label, publish_model, run_trainer
from tasks.sampling import sample_judgments
from tasks.stage import MODEL, MODEL_SECTIONS, TABLE, stage

EASY_FILE = "too_easy.json"


def too_easy_items(rows: list[dict]) -> set[str]:
    flags: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        flags[r["item_id"]].append(bool(r["correct"]))
    return {iid for iid, f in flags.items() if rules.too_easy(f)}


def filter_too_easy(ctx: StageContext, model: ArtifactRef | None, items: list[dict], memo) -> set[str]:
    """Items ``model`` (rl.easy_filter_model) gets right in all rl.easy_filter_samples samples. The answer is
    kept in the stage's work folder, so a rerun after a killed training run does not sample again."""
    n = ctx.config.rl.easy_filter_samples
    if n == 0:
        return set()
    if memo.is_file():
        saved = json.loads(memo.read_text())
        if saved["items"] == sorted(i["item_id"] for i in items):
            return set(saved["too_easy"])
    sampled = sample_judgments(ctx, model, items, k=n, temperature=ctx.config.rl.temperature, tag="rl-easy")
    easy = too_easy_items(sampled)
    memo.write_text(json.dumps({"items": sorted(i["item_id"] for i in items), "too_easy": sorted(easy)}))
    return easy


def grpo_params(cfg) -> dict:
    """The GRPO trainer's own settings (grm.training.grpo.grpo_config) from the config's rl section."""
    rl = cfg.rl
    return {
        "group_size": rl.group_size,
        "beta": rl.beta,
        "loss_type": rl.loss_type,
        "temperature": rl.temperature,
        "max_completion_length": rl.max_completion_length or cfg.generation.max_new_tokens,
        "use_vllm": rl.use_vllm,
        "vllm_mode": rl.vllm_mode,
        "vllm_server_url": rl.vllm_server_url,
        "vllm_gpu_memory_utilization": rl.vllm_gpu_memory_utilization,
    }


@stage(group="train", outputs={"grm": MODEL, "rl_log": TABLE}, config=MODEL_SECTIONS + ("rl",),
       models={"easy_filter": "rl.easy_filter_model"}, when={"easy_filter": lambda cfg: cfg.rl.easy_filter_samples > 0})
def run(ctx: StageContext, items: ArtifactRef, rft: ArtifactRef, easy_filter: ArtifactRef | None = None) -> StageOutput:
    cfg = ctx.config
    rl = cfg.rl
    items = [i for i in ctx.store.read_rows(items) if i["split"] == "train" and trainable(i)]
    job_dir = ctx.work_dir()
    easy = filter_too_easy(ctx, easy_filter, items, job_dir / EASY_FILE)
    judge = model_label(easy_filter) if easy_filter is not None else "no filter"
    kept = [i for i in items if i["item_id"] not in easy]
    if not kept:
        raise ValueError(f"rl: all {len(items)} train items are too easy for {judge} (rl.easy_filter_model); nothing to learn from")
    draws = draws_per_item(len(kept), rl.train.max_steps, rl.train.batch_size // rl.group_size)
    prompts = grpo_rows(kept, draws=draws, seed=cfg.seed, templates=Templates.configured(cfg))
    card_data = {"train_items": len(items), "too_easy_dropped": len(easy), "easy_filter_model": judge, "rl_items": len(kept),
                 "draws_per_item": draws}
    result = run_trainer(
        ctx, "grpo", rft, rl.train, grpo_params(cfg), prompts,
        description="Rule-based online RL (GRPO, reward +1/-1 by Eq. 11, KL penalty) from the RFT model.",
        card_data=card_data, python=rl.trainer_python,
    )
    log_rows = read_rl_log(job_dir)
    log_ref = ctx.store.write_table("rl_log", log_rows, **ctx.manifest())
    model = publish_model(ctx, "grm", result["model_dir"], metrics=result["metrics"], data=card_data)
    clear_checkpoints(job_dir)
    m = result["metrics"]
    md = (
        f"# rl\n\n{len(items)} train items, {len(easy)} too easy for {judge} (all {rl.easy_filter_samples} samples "
        f"correct) dropped, {len(kept)} used; G={rl.group_size}, beta={rl.beta}, loss {rl.loss_type}; {m['steps']} steps"
        + (f" (resumed from step {m['resumed_from_step']})" if m["resumed_from_step"] else "")
        + f"; reward {m['reward_first']} -> {m['reward_last']}.\n"
    )
    return StageOutput(
        {"grm": model, "rl_log": log_ref},
        rows_in=len(kept),
        rows_out=len(log_rows),
        summary_md=md,
        metrics={**m, "too_easy": len(easy), "rl_items": len(kept)},
    )
