"""The trained GRM as the reward of a real policy: a few steps of TRL's GRPOTrainer on real prompts.

The policy (e.g. the imported SmolLM2-135M-Instruct) writes ``--group-size`` completions for each prompt; the
GRM judges the completions of one prompt together, as one listwise item (the paper's input, so the scores are
relative within the group), with ``--k`` samples voted (``GRMReward.reward_function(group=True)``, docs/design.md).
Each completion's reward is its mean 1-10 score. A completion no GRM sample could score gets None: TRL leaves it
out of its group's baseline and gives it zero advantage. Prompts are the conversations of a dataset read with the
project's importers (HH-RLHF by default), each ending in a user turn.

    python examples/grm_reward_grpo.py --policy smollm2 --grm grm --store store \\
        --prompts ../shared/data/hh_rlhf/harmless-base/test.jsonl.gz --steps 4 --group-size 4 --k 1 --out /tmp/grpo

Prints one line per step (the mean reward TRL logged, how many rewards were None, KL, loss) and at the end the
relative L2 change of the policy's weights, ||w_after - w_before|| / ||w_before||; writes ``summary.json`` to
``--out``. Runs on CPU in float32 (on a GPU when there is one, as the pipeline's trainers do).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

DEFAULT_PROMPTS = "hh_rlhf/harmless-base/test.jsonl.gz"  # under ../shared/data


@dataclass
class PromptSet:
    prompts: list[list[dict]]  # conversations ending in a user turn, each once
    read: int  # rows read from the file
    quarantined: int  # rows the format could not use (the importer's count)
    too_long: int  # distinct conversations over max_chars, left out
    repeated: int  # conversations seen before, left out: two dataset rows with one prompt would merge TRL's groups
    usable: int  # distinct conversations within max_chars in the whole file (the first ``limit`` are taken)


def load_prompts(path: str | Path, *, format_name: str = "hh_rlhf", limit: int = 16, max_chars: int = 600,
                 base_dir: Path | None = None) -> PromptSet:
    """The first ``limit`` distinct conversations of at most ``max_chars`` characters from a dataset file in one
    of the project's formats (grm/formats), without their final replies."""
    from grm.formats.importer import import_source

    result = import_source("prompts", format_name, [str(path)], base_dir=base_dir)
    prompts, seen, too_long, repeated, usable = [], set(), 0, 0, 0
    for item in result.items:
        conversation = [{"role": m["role"], "content": m["content"]} for m in item["conversation"]]
        if conversation[-1]["role"] != "user":
            raise ValueError(f"{path}: item {item['item_id']} does not end in a user turn, so it is not a prompt")
        key = json.dumps(conversation)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        if sum(len(m["content"]) for m in conversation) > max_chars:
            too_long += 1
            continue
        usable += 1
        if len(prompts) < limit:
            prompts.append(conversation)
    return PromptSet(prompts, result.stats.read, result.stats.quarantined_total, too_long, repeated, usable)


@dataclass
class RewardCall:
    step: int
    group_sizes: list[int]  # completions per distinct prompt in the call
    rewards: list[float | None]

    @property
    def unscored(self) -> int:
        return sum(r is None for r in self.rewards)

    @property
    def mean(self) -> float | None:
        scored = [r for r in self.rewards if r is not None]
        return sum(scored) / len(scored) if scored else None


class RewardLog:
    """A TRL reward function around another: records every call (the groups it got, the rewards it returned)
    and logs the share of None rewards to the trainer as ``grm_unscored``."""

    def __init__(self, reward_func: Callable):
        self.reward_func = reward_func
        self.__name__ = reward_func.__name__  # TRL names the reward's metrics after it
        self.calls: list[RewardCall] = []

    def __call__(self, prompts, completions, trainer_state=None, log_metric=None, **kwargs):
        rewards = self.reward_func(prompts=prompts, completions=completions, **kwargs)
        step = trainer_state.global_step + 1 if trainer_state is not None else len(self.calls) + 1
        groups = Counter(json.dumps(p) if not isinstance(p, str) else p for p in prompts)
        call = RewardCall(step, sorted(groups.values()), list(rewards))
        self.calls.append(call)
        if log_metric is not None:
            log_metric("grm_unscored", call.unscored / len(rewards))
        return rewards


def _num(logs: dict, key: str) -> str:
    v = logs.get(key)
    return "n/a" if v is None else f"{float(v):.4g}"


def step_printer(reward_log: RewardLog, print_fn: Callable[[str], None] = print):
    from transformers import TrainerCallback

    class StepPrinter(TrainerCallback):
        """One line per optimizer step from what the trainer logged (logging_steps is 1)."""

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "reward" not in logs:
                return
            call = next((c for c in reversed(reward_log.calls) if c.step == state.global_step), None)
            none = f"{call.unscored}/{len(call.rewards)} rewards None" if call else "no reward call recorded"
            print_fn(f"step {state.global_step}/{state.max_steps}: mean reward {_num(logs, 'reward')} "
                     f"(std {_num(logs, 'reward_std')}), {none}, kl {_num(logs, 'kl')}, loss {_num(logs, 'loss')}")

    return StepPrinter()


def build_trainer(policy: str, reward_funcs: Sequence[Callable], prompts: Sequence[list[dict]], *, out_dir: str | Path,
                  steps: int, group_size: int, prompts_per_step: int = 1, max_completion_length: int = 64,
                  temperature: float | None = None, beta: float | None = None, learning_rate: float = 1e-5,
                  seed: int = 0, callbacks: Sequence = ()):
    """TRL's GRPOTrainer as the pipeline's rl stage configures it (grm.training.grpo.grpo_config: the paper's
    GRPO objective with its plain KL penalty), over ``prompts``: ``prompts_per_step`` prompts x ``group_size``
    completions per optimizer step, one generation per step."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOTrainer

    from grm.config import RLConfig
    from grm.model_loading import ModelTrust, pretrained_kwargs
    from grm.training.grpo import grpo_config
    from grm.training.jobs import device_settings, torch_dtype
    from grm.training.tokenizers import load_tokenizer

    defaults = RLConfig()
    device, _ = device_settings({})  # CPU: float32, use_cpu; GPU: bf16 where supported
    args = {
        "output_dir": str(out_dir), "learning_rate": learning_rate, "max_steps": steps, "seed": seed, "data_seed": seed,
        "per_device_train_batch_size": group_size * prompts_per_step, "gradient_accumulation_steps": 1,
        "logging_steps": 1, "save_strategy": "no", "report_to": "none", "disable_tqdm": True, **device,
    }
    params = {"group_size": group_size, "max_completion_length": max_completion_length,
              "beta": defaults.beta if beta is None else beta,
              "temperature": defaults.temperature if temperature is None else temperature}
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch_dtype("auto", args["bf16"]), **pretrained_kwargs(policy, ModelTrust()))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),
        args=grpo_config({"params": params}, args),
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=load_tokenizer(policy),
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)  # the StepPrinter's line replaces the raw dict
    return trainer


def snapshot(model) -> dict:
    return {n: p.detach().float().clone() for n, p in model.named_parameters()}


def relative_change(before: dict, model) -> float:
    """||w_after - w_before|| / ||w_before|| over all parameters."""
    diff = norm = 0.0
    for n, p in model.named_parameters():
        diff += float((p.detach().float() - before[n]).pow(2).sum())
        norm += float(before[n].pow(2).sum())
    return math.sqrt(diff) / math.sqrt(norm)


@dataclass
class RunSummary:
    steps: int
    calls: list[RewardCall]
    logged_rewards: list[float | None]  # the trainer's "reward" per step (None when every reward was None)
    weight_change: float
    seconds: float
    prompts: dict = field(default_factory=dict)  # PromptSet counts


def run(policy: str, reward, prompts: Sequence[list[dict]], *, out_dir: str | Path, steps: int, group_size: int,
        print_fn: Callable[[str], None] = print, **trainer_kwargs) -> tuple[RunSummary, object]:
    """Train ``policy`` for ``steps`` GRPO steps with ``reward`` (a GRMReward) judging each group listwise.
    Returns the summary and the trainer (its model is the updated policy)."""
    reward_log = RewardLog(reward.reward_function(group=True))
    trainer = build_trainer(policy, [reward_log], prompts, out_dir=out_dir, steps=steps, group_size=group_size,
                            callbacks=[step_printer(reward_log, print_fn)], **trainer_kwargs)
    before = snapshot(trainer.model)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    logged = [h["reward"] for h in trainer.state.log_history if "reward" in h]  # None: every reward was None
    summary = RunSummary(trainer.state.global_step, reward_log.calls, logged, relative_change(before, trainer.model), seconds)
    print_fn(f"{summary.steps} steps in {seconds:.0f} s; rewards None: {sum(c.unscored for c in summary.calls)} of "
             f"{sum(len(c.rewards) for c in summary.calls)}; relative L2 change of the policy's weights: "
             f"{summary.weight_change:.3e}")
    return summary, trainer


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, metavar="PATH", help="the policy: an HF folder, or a store model name (smollm2)")
    p.add_argument("--grm", required=True, metavar="PATH", help="the GRM: a store model folder or any HF folder, or a store model name (grm)")
    p.add_argument("--store", metavar="DIR", help="artifact store for model names (default: $GRM_STORE or ./store)")
    p.add_argument("--config", metavar="FILE", help="the run config the GRM was trained with, for its prompt templates "
                   "(configs/tiny.yaml's are compact; default: the built-in ones, as the SmolLM2 configs use)")
    p.add_argument("--prompts", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / DEFAULT_PROMPTS),
                   metavar="FILE", help=f"a dataset file in --prompts-format (default: ../shared/data/{DEFAULT_PROMPTS})")
    p.add_argument("--prompts-format", default="hh_rlhf", help="its format, one of grm/formats/registry.py (default hh_rlhf)")
    p.add_argument("--num-prompts", type=int, default=16, help="distinct prompts taken from the file (default 16)")
    p.add_argument("--max-prompt-chars", type=int, default=600, help="leave out longer conversations (default 600)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--group-size", type=int, default=4, help="completions per prompt, judged together (G, default 4)")
    p.add_argument("--prompts-per-step", type=int, default=1)
    p.add_argument("--k", type=int, default=1, help="GRM samples per group, voted (default 1: greedy)")
    p.add_argument("--judge-max-new-tokens", type=int, default=256, help="the GRM's budget per judgment (default 256)")
    p.add_argument("--max-completion-length", type=int, default=64, help="the policy's budget per completion (default 64)")
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--beta", type=float, help="KL coefficient (default: the rl config's, 0.08)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="the GRM's device")
    p.add_argument("--out", required=True, metavar="DIR", help="trainer output folder; summary.json goes here")
    a = p.parse_args(argv)

    from flows.cli_score import _model_path  # a folder as given, else the newest store model of that name
    from grm.config import ConfigError, load_config
    from grm.formats.readers import SourceReadError
    from grm.generation import BackendError
    from grm.generation.hf import HFBackend
    from grm.prompts import Templates
    from grm.reward import GRMReward

    if a.steps < 1 or a.group_size < 2 or a.k < 1 or a.num_prompts < 1 or a.prompts_per_step < 1:
        print("grm_reward_grpo: need --steps >= 1, --group-size >= 2, --k >= 1, --num-prompts >= 1, "
              "--prompts-per-step >= 1", file=sys.stderr)
        return 2
    try:
        templates = Templates.configured(load_config(a.config)) if a.config else Templates.default()
        prompts = load_prompts(a.prompts, format_name=a.prompts_format, limit=a.num_prompts, max_chars=a.max_prompt_chars)
        print(f"prompts: {len(prompts.prompts)} from {a.prompts} ({prompts.read} rows read, {prompts.quarantined} "
              f"quarantined, {prompts.repeated} repeated prompts, {prompts.too_long} over {a.max_prompt_chars} chars, "
              f"{prompts.usable} usable)")
        if len(prompts.prompts) < a.prompts_per_step:
            raise ValueError(f"{len(prompts.prompts)} usable prompts in {a.prompts}, fewer than --prompts-per-step")
        policy = _model_path(a.policy, a.store, "policy")
        grm = _model_path(a.grm, a.store, "GRM")
        backend = HFBackend(grm, device=a.device)  # float32 on CPU
    except (ConfigError, SourceReadError, KeyError, ValueError, FileNotFoundError, BackendError) as e:
        print(f"grm_reward_grpo: {e}", file=sys.stderr)
        return 2
    reward = GRMReward(backend, k=a.k, max_new_tokens=a.judge_max_new_tokens, seed=a.seed, templates=templates)
    out = Path(a.out)
    with backend:
        summary, _ = run(policy, reward, prompts.prompts, out_dir=out, steps=a.steps, group_size=a.group_size,
                         prompts_per_step=a.prompts_per_step, max_completion_length=a.max_completion_length,
                         learning_rate=a.learning_rate, beta=a.beta, seed=a.seed)
    summary.prompts = {k: v for k, v in asdict(prompts).items() if k != "prompts"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({**asdict(summary), "policy": policy, "grm": grm, "k": a.k,
                                                  "group_size": a.group_size}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
