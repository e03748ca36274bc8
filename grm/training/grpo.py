"""Rule-based online RL: TRL's GRPOTrainer with the SPCT reward (child program; see launch.py).

Reward (paper Eq. 11): +1 when the scores parsed from a completion single out the ground-truth best response
(n >= 2) or equal the 0/1 label (n = 1), -1 otherwise, parse failures included; no format reward. The
dataset's reward columns (n_responses, best_shown, label, binary) are in the order the prompt shows.

Every step appends a row to ``rl_log.jsonl`` (reward mean/std, KL, loss, parse rate, lr, completion length,
seconds) and every scored completion to ``completions.jsonl`` in the job folder, so the reward can be
recomputed from what was logged. A resumed run drops the rows past its checkpoint.

    python -m grm.training.grpo JOB_DIR
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from grm import rules
from grm.parsing import BINARY, GRADED, parse_scores
from grm.training.jobs import checkpoint_step, child_main, common_arguments, is_main_process, job_paths, last_checkpoint, read_data, torch_dtype, write_model_card, resume_training
from grm.model_loading import pretrained_kwargs
from grm.training.tokenizers import job_trust, load_tokenizer

RL_LOG = "rl_log.jsonl"
COMPLETIONS = "completions.jsonl"


def completion_text(completion) -> str:
    """TRL hands conversational completions as [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion)
    return completion


def spct_reward_one(text: str, n_responses: int, best_shown: int | None, label: int | None, binary: bool) -> tuple[float, bool]:
    """(reward, parsed) of one completion, using the core's parser and rule."""
    status, scores = parse_scores(text, n_responses, BINARY if binary else GRADED)
    truth = {"best": best_shown} if best_shown is not None else {"label": label}
    return rules.rl_reward(scores, **truth), scores is not None


class SPCTReward:
    """The TRL reward function. It also writes each scored completion to the job's completions log."""

    __name__ = "spct_rule"

    def __init__(self, log_path: Path | None):
        self.log_path = log_path

    def __call__(self, completions, n_responses, best_shown, label, binary, item_id=None, trainer_state=None, log_metric=None, **_):
        texts = [completion_text(c) for c in completions]
        scored = [spct_reward_one(t, n, b, l, bi) for t, n, b, l, bi in zip(texts, n_responses, best_shown, label, binary)]
        rewards = [r for r, _ in scored]
        if log_metric is not None and scored:
            log_metric("parse_rate", sum(p for _, p in scored) / len(scored))
        if self.log_path is not None:  # one file per process: appends from several ranks must not interleave
            rank = int(os.environ.get("RANK", "0"))
            path = self.log_path if rank == 0 else self.log_path.with_name(f"{self.log_path.stem}.rank{rank}.jsonl")
            step = (trainer_state.global_step + 1) if trainer_state is not None else None
            with open(path, "a") as f:
                for i, t in enumerate(texts):
                    f.write(json.dumps({"step": step, "item_id": (item_id or [None] * len(texts))[i], "completion": t,
                                        "n_responses": n_responses[i], "best_shown": best_shown[i], "label": label[i],
                                        "binary": binary[i], "reward": rewards[i]}) + "\n")
        return rewards


def _truncate_log(path: Path, after_step: int) -> None:
    """Keep the rows of steps up to ``after_step`` (a resumed run redoes the later ones)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and (json.loads(ln).get("step") or 0) <= after_step]
    path.write_text("".join(k + "\n" for k in keep))


def _first(logs: dict, *keys):
    for k in keys:
        if logs.get(k) is not None:
            return float(logs[k])
    return None


def rl_log_callback(path: Path):
    from transformers import TrainerCallback

    class RLLog(TrainerCallback):
        """One rl_log row per optimizer step (logging_steps is 1)."""

        def __init__(self):
            self.step_started = None
            self.step_seconds = None

        def on_step_begin(self, args, state, control, **kw):
            self.step_started = time.time()

        def on_step_end(self, args, state, control, **kw):
            if self.step_started is not None:
                self.step_seconds = time.time() - self.step_started

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or "reward" not in logs:
                return
            row = {
                "step": state.global_step,
                "reward_mean": _first(logs, "reward"),
                "reward_std": _first(logs, "reward_std"),
                "kl": _first(logs, "kl"),
                "loss": _first(logs, "loss"),
                "parse_rate": _first(logs, "parse_rate"),
                "learning_rate": _first(logs, "learning_rate"),
                "completion_length": _first(logs, "completions/mean_length"),
                "seconds": self.step_seconds,
            }
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")

    return RLLog()


def grpo_config(job: dict, args: dict):
    """TRL's GRPOConfig for the job: the original GRPO objective the paper uses (Eq. 15) with its plain KL penalty."""
    from trl import GRPOConfig

    p = job["params"]
    vllm = {}
    if p.get("use_vllm"):
        vllm = {"use_vllm": True, "vllm_mode": p.get("vllm_mode", "colocate")}
        if p.get("vllm_server_url"):
            vllm["vllm_server_base_url"] = p["vllm_server_url"]
        if p.get("vllm_gpu_memory_utilization"):
            vllm["vllm_gpu_memory_utilization"] = p["vllm_gpu_memory_utilization"]
    return GRPOConfig(
        **args,
        num_generations=p["group_size"],
        beta=p["beta"],  # TRL's default is 0 (no KL, no reference model); SPCT relies on the KL penalty
        loss_type=p.get("loss_type", "grpo"),
        temperature=p["temperature"],
        max_completion_length=p["max_completion_length"],
        shuffle_dataset=True,
        # TRL 1.16 defaults that the paper's GRPO does not have: the k3 KL term multiplied by the importance
        # ratio, and vLLM rollouts reweighted by importance sampling. Off, so beta = 0.08 is the plain penalty.
        use_bias_correction_kl=False,
        vllm_importance_sampling_correction=False,
        **vllm,
    )


def build_trainer(job: dict, log_dir: Path | None = None):
    args, notes = common_arguments(job)  # first: a bad config fails before the slow imports
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOTrainer

    g = job["params"]["group_size"]
    if job["train"]["batch_size"] % g:
        raise ValueError(f"rl batch_size {job['train']['batch_size']} (completions per step) is not a multiple of group_size {g}")
    tok = load_tokenizer(job["model"], job_trust(job))
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch_dtype(job.get("dtype", "auto"), args["bf16"]),
                                                 **pretrained_kwargs(job["model"], job_trust(job)))
    config = grpo_config(job, args)
    columns = ("prompt", "item_id", "n_responses", "best_shown", "label", "binary")
    rows = [{k: r[k] for k in columns} for r in read_data(job["job_dir"])]
    log_dir = log_dir or Path(job["job_dir"])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[SPCTReward(log_dir / COMPLETIONS)],
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        callbacks=[rl_log_callback(log_dir / RL_LOG)],
    )
    return trainer, notes


def train(job: dict) -> dict:
    job_dir = Path(job["job_dir"])
    ckpt = last_checkpoint(job_paths(job_dir)["checkpoints"])
    if is_main_process():  # rows logged after the checkpoint by a killed run are redone now
        _truncate_log(job_dir / RL_LOG, checkpoint_step(ckpt))
        for path in job_dir.glob("completions*.jsonl"):
            _truncate_log(path, checkpoint_step(ckpt))
    trainer, notes = build_trainer(job)
    out = resume_training(trainer, ckpt, "grpo")
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    metrics = {
        "train_loss": out.training_loss,
        "steps": trainer.state.global_step,
        "resumed_from_step": checkpoint_step(ckpt),
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
    }
    final = job_paths(job_dir)["model"]
    trainer.save_model(str(final))  # on every process: DeepSpeed ZeRO-3 gathers the sharded weights collectively
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final))
        write_model_card(final, "GRM after rule-based online RL (SPCT step 2, GRPO)", job, metrics)
    return {"metrics": metrics, "notes": notes}


def read_rl_log(job_dir: str | Path) -> list[dict]:
    """The per-step rows, one per step (the last written wins, in case a step was logged twice)."""
    path = Path(job_dir) / RL_LOG
    rows = {}
    if path.is_file():
        for ln in path.read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                rows[r["step"]] = r
    return [rows[k] for k in sorted(rows)]


def read_completions(job_dir: str | Path) -> list[dict]:
    return [json.loads(ln) for p in sorted(Path(job_dir).glob("completions*.jsonl")) for ln in p.read_text().splitlines() if ln.strip()]


if __name__ == "__main__":
    child_main(train)
