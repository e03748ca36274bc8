"""The paper's compute, on paper (issue 17): tokens, FLOPs and A100-hours per pipeline stage at the paper's scale,
beside the A100-hours the paper reports, and the model-FLOPs utilisation (MFU) they imply. Not a test; nothing runs
on a model.

    .venv/bin/python -m bench.paper_cost [--config configs/paper-gemma2-27b.yaml] [--record]

Sizes (samples per item, batches, steps, k, which model samples what) come from the config, read with grm.config;
the rest are the named assumptions below, each with its reason. FLOPs count model FLOPs only: 2 x N per token run
forward (decode, prompt prefill, reference model, meta-RM scoring) and 6 x N per token trained (forward +
backward), N the parameters a token passes through (the active ones of a mixture of experts); attention's score
FLOPs are left out, as in bench/gpu.py. A100-hours = FLOPs / (peak x utilisation x 3600), with decoded tokens at
MFU x DECODE_EFFICIENCY and every other token at MFU. ``--record`` appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.roofline import DecoderShape
from grm.config import ConfigError, Config, EndpointConfig, PIPELINE_MODELS, load_config

ROOT = Path(__file__).resolve().parents[1]
HEADING = "### Issue 17: cost at the paper's scale (on paper)"

ASSUMPTIONS: list[tuple[str, object, str]] = []  # (name, value, reason), in the order they are stated


def _assumed(name: str, value, why: str):
    ASSUMPTIONS.append((name, value, why))
    return value


# ---- hardware and utilisation -------------------------------------------------------------------------------
A100_PEAK_FLOPS = _assumed("A100_PEAK_FLOPS", 312e12, "A100 bf16 dense tensor-core peak (NVIDIA datasheet; 624 is with sparsity)")
MFU = _assumed("MFU", 0.40, "below the ~48% of LLaMA-65B's A100 training (380 tokens/s/GPU: 6 x 65.2e9 x 380 / 312e12); "
               "ZeRO-3 at per-device batch 1 (the config's trainers) loses some of it to communication")
DECODE_EFFICIENCY = _assumed("DECODE_EFFICIENCY", statistics.mean([0.51, 0.57]),
                             "measured: vLLM decoded at 51% and 57% of the GEMM roofline of the same batch "
                             "(BENCHMARKS.md issue 17, runs A and D, CPU); decode runs at MFU x this")
PAPER_GPUS = _assumed("PAPER_GPUS", 128, "paper App. C.1: 128 A100s (Fire-Flyer) for RFT and for RL")
PAPER_HOURS = _assumed("PAPER_HOURS", {"rft_train": 19.2, "rl": 15.6},
                       "paper App. C.1: RFT 19.2 h, RL 15.6 h (wall, on PAPER_GPUS); nothing reported for the other stages")

# ---- models: the config names them, their sizes are published --------------------------------------------------
GEMMA2_27B = _assumed("GEMMA2_27B", DecoderShape(hidden=4608, intermediate=36864, layers=46, heads=32, kv_heads=16,
                                                  head_dim=128, vocab=256000),
                      "Gemma-2-27B's published config.json (the config names google/gemma-2-27b, not its shapes); "
                      "tied embeddings: the output head counts, the input lookup does not")
MODEL_PARAMS = _assumed("MODEL_PARAMS", {
    "google/gemma-2-27b": GEMMA2_27B.flops_per_token / 2,
    "google/gemma-2-27b-it": GEMMA2_27B.flops_per_token / 2,
    "deepseek-ai/DeepSeek-V2.5": 21e9,
    "deepseek-ai/DeepSeek-V2-Lite-Chat": 2.4e9,
}, "parameters per token: Gemma-2 from GEMMA2_27B; DeepSeek-V2.5 21B and V2-Lite 2.4B activated of 236B / 15.7B "
   "(their model cards)")

# ---- data sizes and lengths the paper does not give -------------------------------------------------------------
RM_ITEMS = _assumed("RM_ITEMS", 237_000, "RM items sampled for RFT, the too-easy filter and the meta RM: the paper's "
                    "RL set (237K) is drawn from the same RM data after the too-easy filter, so the pool is at least "
                    "this; UNCONFIRMED, a lower bound")
PROMPT_TOKENS = _assumed("PROMPT_TOKENS", 460, "measured: mean GRM prompt of the issue-17 workload (RM-Bench chat "
                         "pairs, SmolLM2 tokenizer); the paper's training pairs have longer responses: a low-side figure")
FIG7_RFT_TOKENS = (241, 259, 245, 260)  # paper Fig. 7, mean output tokens of the RFT model: Chat, Chat Hard, Safety, Reasoning
FIG7_RL_TOKENS = (265, 259, 218, 376)  # the same after RL
RFT_OUTPUT_TOKENS = _assumed("RFT_OUTPUT_TOKENS", statistics.mean(FIG7_RFT_TOKENS),
                             "paper Fig. 7: the RFT model's mean output over RewardBench's sections; taken for the "
                             "teacher's trajectories too (the RFT model learned their length) and the small filter model")
GRM_OUTPUT_TOKENS = _assumed("GRM_OUTPUT_TOKENS", statistics.mean(FIG7_RL_TOKENS),
                             "paper Fig. 7: the same after RL (GRPO rollouts, the GRM's samples)")
GENERAL_EXAMPLE_TOKENS = _assumed("GENERAL_EXAMPLE_TOKENS", 1000, "mean length of a general instruction example in "
                                  "the RFT mix (the paper's are in-house, unreleased); UNCONFIRMED, a round guess")
MATH_PROBLEMS = _assumed("MATH_PROBLEMS", 7_500, "MATH's published train split (data.math_samples.sources)")
MATH_PROMPT_TOKENS = _assumed("MATH_PROMPT_TOKENS", 100, "a MATH problem plus the instruction line; UNCONFIRMED")
MATH_SOLUTION_TOKENS = _assumed("MATH_SOLUTION_TOKENS", 400, "a step-by-step MATH solution; UNCONFIRMED")
EVAL_ITEMS = _assumed("EVAL_ITEMS", 30_000, "RewardBench 2,985 + PPE Preference ~16K + PPE Correctness ~2.5K + RMB "
                      "~7K (BoN 3,786 + pairwise) + ReaLMistake ~1K; only RewardBench's and RMB BoN's counts checked")


# ---- the arithmetic: plain numbers in, plain numbers out ------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """Tokens one model of ``params`` parameters per token runs in a stage."""

    params: float
    generated: float = 0.0  # decoded: 2 x params each, at MFU x decode_efficiency
    forward: float = 0.0  # run forward only (prompt prefill, reference model, scoring): 2 x params each, at MFU
    trained: float = 0.0  # forward + backward: 6 x params each, at MFU


def work_flops(w: Work) -> float:
    return 2 * w.params * (w.generated + w.forward) + 6 * w.params * w.trained


def work_gpu_hours(w: Work, peak_flops: float, mfu: float, decode_efficiency: float) -> float:
    """GPU-hours = FLOPs / (peak x utilisation x 3600), decoded tokens at mfu x decode_efficiency."""
    decode = 2 * w.params * w.generated / (mfu * decode_efficiency)
    rest = (2 * w.params * w.forward + 6 * w.params * w.trained) / mfu
    return (decode + rest) / (peak_flops * 3600)


def implied_mfu(flops: float, gpu_hours: float, peak_flops: float) -> float:
    """The model-FLOPs utilisation at which ``flops`` take ``gpu_hours``."""
    return flops / (gpu_hours * 3600 * peak_flops)


@dataclass(frozen=True)
class StageCost:
    stage: str
    generated: float
    forward: float
    trained: float
    flops: float
    gpu_hours: float  # at the assumed utilisation
    paper_gpu_hours: float | None = None
    peak: float = A100_PEAK_FLOPS

    @property
    def implied_mfu(self) -> float | None:
        return None if self.paper_gpu_hours is None else implied_mfu(self.flops, self.paper_gpu_hours, self.peak)


def stage_cost(stage: str, works: list[Work], *, peak_flops: float, mfu: float, decode_efficiency: float,
               paper_gpu_hours: float | None = None) -> StageCost:
    return StageCost(
        stage=stage,
        generated=sum(w.generated for w in works),
        forward=sum(w.forward for w in works),
        trained=sum(w.trained for w in works),
        flops=sum(work_flops(w) for w in works),
        gpu_hours=sum(work_gpu_hours(w, peak_flops, mfu, decode_efficiency) for w in works),
        paper_gpu_hours=paper_gpu_hours,
        peak=peak_flops,
    )


# ---- from the config to token counts ------------------------------------------------------------------------------
def model_params(choice, cfg: Config, field: str) -> float:
    """Parameters per token of a model the config names (a hub id, an endpoint, or a pipeline model: the base's)."""
    name = choice.model if isinstance(choice, EndpointConfig) else choice
    if name in PIPELINE_MODELS or name in ("base", "warm"):
        name = cfg.models.base
    if name not in MODEL_PARAMS:
        raise ValueError(f"{field} is {name!r}: no published size for it in bench/paper_cost.py MODEL_PARAMS "
                         f"(known: {', '.join(sorted(MODEL_PARAMS))})")
    return MODEL_PARAMS[name]


def output_tokens(model: str, cap: int) -> float:
    """Mean output of a pipeline model's samples: the RFT model's or the GRM's (Fig. 7), within the token budget."""
    return min(RFT_OUTPUT_TOKENS if model == "rft" else GRM_OUTPUT_TOKENS, cap)


def paper_stages(cfg: Config) -> list[StageCost]:
    cap = cfg.generation.max_new_tokens
    policy = model_params(cfg.models.base, cfg, "models.base")
    metarm = model_params(cfg.models.metarm_base or "base", cfg, "models.metarm_base")
    rft_out, grm_out = min(RFT_OUTPUT_TOKENS, cap), min(GRM_OUTPUT_TOKENS, cap)
    at = dict(peak_flops=A100_PEAK_FLOPS, mfu=MFU, decode_efficiency=DECODE_EFFICIENCY)
    rows = []

    math = cfg.data.math_samples
    if math is not None:
        n = MATH_PROBLEMS * math.n_samples
        out = min(MATH_SOLUTION_TOKENS, math.max_new_tokens or cap)
        rows.append(stage_cost("MATH solutions (math_samples)", [
            Work(model_params(math.sampler, cfg, "data.math_samples.sampler"), n * out, n * MATH_PROMPT_TOKENS)], **at))

    rft = cfg.rft
    n = RM_ITEMS * (rft.n_samples + int(rft.hinted))
    rows.append(stage_cost("RFT sampling (rft_sample)", [
        Work(model_params(rft.sampler, cfg, "rft.sampler"), n * rft_out, n * PROMPT_TOKENS)], **at))

    grm_example = min(PROMPT_TOKENS + rft_out, cfg.models.max_length)
    per_example = rft.general_ratio * min(GENERAL_EXAMPLE_TOKENS, cfg.models.max_length) + (1 - rft.general_ratio) * grm_example
    rows.append(stage_cost("RFT training (rft_train, SFT)", [
        Work(policy, trained=rft.train.batch_size * rft.train.max_steps * per_example)],
        paper_gpu_hours=PAPER_GPUS * PAPER_HOURS["rft_train"], **at))

    rl = cfg.rl
    if rl.easy_filter_samples:
        n = RM_ITEMS * rl.easy_filter_samples
        name = rl.easy_filter_model
        out = output_tokens(name, cap) if isinstance(name, str) and name in PIPELINE_MODELS else rft_out
        rows.append(stage_cost("RL too-easy filter (rl)", [
            Work(model_params(rl.easy_filter_model, cfg, "rl.easy_filter_model"), n * out, n * PROMPT_TOKENS)], **at))

    # rl.train.batch_size counts rollouts (grm.config RLConfig): batch_size / group_size prompts per step
    rollouts = rl.train.batch_size * rl.train.max_steps
    out = min(grm_out, rl.max_completion_length or cap)
    seq = min(PROMPT_TOKENS + out, cfg.models.max_length)
    rows.append(stage_cost("Online RL (rl, GRPO)", [
        # rollouts (prefill + decode), the policy's forward + backward, the reference model's forward
        Work(policy, generated=rollouts * out, forward=rollouts * PROMPT_TOKENS + (rollouts * seq if rl.beta else 0),
             trained=rollouts * seq)],
        paper_gpu_hours=PAPER_GPUS * PAPER_HOURS["rl"], **at))

    mr = cfg.metarm
    n = RM_ITEMS * mr.fresh_samples
    rows.append(stage_cost("Meta-RM data (metarm_data)", [Work(policy, n * grm_out, n * PROMPT_TOKENS)], **at))
    # its examples: the RFT model's non-hinted trajectories and as many fresh GRM samples (equal shares)
    meta_seq = min(PROMPT_TOKENS + statistics.mean([rft_out, grm_out] if mr.fresh_samples else [rft_out]), mr.max_length)
    rows.append(stage_cost("Meta-RM training (metarm_train, BCE)", [
        Work(metarm, trained=mr.train.batch_size * mr.train.max_steps * meta_seq)], **at))

    j = cfg.judge
    works = []
    for name in j.models:
        works.append(Work(model_params(name, cfg, "judge.models"), EVAL_ITEMS * output_tokens(name, cap), EVAL_ITEMS * PROMPT_TOKENS))
    for name in j.voting_models:
        n = EVAL_ITEMS * j.k_max
        works.append(Work(model_params(name, cfg, "judge.voting_models"), n * output_tokens(name, cap), n * PROMPT_TOKENS))
    if j.meta_scores and j.meta_guides in j.voting_models:
        n = EVAL_ITEMS * j.k_max
        works.append(Work(metarm, forward=n * min(PROMPT_TOKENS + output_tokens(j.meta_guides, cap), mr.max_length)))
    rows.append(stage_cost(f"Judge / eval (judge: greedy + k={j.k_max}, meta-RM scores)", works, **at))
    return rows


def total(rows: list[StageCost]) -> StageCost:
    return StageCost("Total", *(sum(getattr(r, f) for r in rows) for f in ("generated", "forward", "trained", "flops", "gpu_hours")),
                     paper_gpu_hours=None)


# ---- what the sizes would be under the two biggest unknowns --------------------------------------------------------
def sensitivities(cfg: Config, rows: list[StageCost]) -> list[str]:
    """The implied MFU if the paper packed SFT sequences to the context, or its RL batch counted prompts."""
    by = {r.stage.split(" (")[0]: r for r in rows}
    out = []
    rft, rl = by["RFT training"], by["Online RL"]
    packed = 6 * model_params(cfg.models.base, cfg, "models.base") * cfg.rft.train.batch_size * cfg.rft.train.max_steps * cfg.models.max_length
    out.append(f"RFT training: this pipeline's SFT does not pack (grm/training/sft.py, packing=False); had the paper packed "
               f"every sequence to {cfg.models.max_length} tokens, the trained tokens would be "
               f"{cfg.rft.train.batch_size * cfg.rft.train.max_steps * cfg.models.max_length / 1e9:.2f}B and the implied "
               f"MFU {implied_mfu(packed, rft.paper_gpu_hours, A100_PEAK_FLOPS):.1%} (vs {rft.implied_mfu:.1%}).")
    g = cfg.rl.group_size
    out.append(f"Online RL: the config reads the paper's batch 512 as rollouts ({cfg.rl.train.batch_size // g} prompts x G = {g}); "
               f"if it counted prompts (UNCONFIRMED, paper_spec 2(b)), every token count and FLOP is x{g}: implied MFU "
               f"{g * rl.implied_mfu:.1%} (vs {rl.implied_mfu:.1%}).")
    return out


# ---- output -----------------------------------------------------------------------------------------------------------
def _tokens(x: float) -> str:
    return "0" if x == 0 else f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.1f}M"


def table(rows: list[StageCost]) -> str:
    lines = [f"| stage | tokens generated | tokens forward only (prompts, reference, scoring) | tokens trained | PFLOP "
             f"| A100-hours at {MFU:.0%} MFU (decode at {MFU * DECODE_EFFICIENCY:.1%}) "
             f"| paper's reported A100-hours ({PAPER_GPUS} x h) | implied MFU to match the paper |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows + [total(rows)]:
        paper = "-" if r.paper_gpu_hours is None else f"{r.paper_gpu_hours:,.1f}"
        mfu = "-" if r.implied_mfu is None else f"{r.implied_mfu:.1%}"
        lines.append(f"| {r.stage} | {_tokens(r.generated)} | {_tokens(r.forward)} | {_tokens(r.trained)} | "
                     f"{r.flops / 1e15:,.0f} | {r.gpu_hours:,.0f} | {paper} | {mfu} |")
    return "\n".join(lines)


def assumptions_md() -> str:
    def show(v) -> str:
        if isinstance(v, DecoderShape):
            return (f"hidden {v.hidden}, intermediate {v.intermediate}, {v.layers} layers, {v.heads}/{v.kv_heads} heads of "
                    f"{v.head_dim}, vocab {v.vocab}: {v.flops_per_token / 2 / 1e9:.2f}B params per token")
        if isinstance(v, dict):
            return ", ".join(f"{k}: {x / 1e9:.2f}B" if isinstance(x, float) and x > 1e6 else f"{k}: {x}" for k, x in v.items())
        return f"{v:g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)

    return "\n".join(f"- `{name}` = {show(value)}: {why}" for name, value, why in ASSUMPTIONS)


def report(cfg: Config, rows: list[StageCost]) -> str:
    return "\n\n".join([
        table(rows),
        "FLOPs: 2 x N per token forward, 6 x N per token trained (N: parameters per token; attention scores left out). "
        "A100-hours: FLOPs / (312 TFLOP/s x utilisation x 3600). Implied MFU: FLOPs / (paper's A100-hours x 3600 x "
        "312 TFLOP/s). Each sampled sequence prefills its own prompt (samples show the responses in their own order). "
        "GRPO counts rollouts, the policy's forward + backward and the reference model's forward (10 x N per token, "
        "as bench/gpu.py); an old-policy forward, where TRL computes one, would add 2 x N.",
        "\n".join(f"- {s}" for s in sensitivities(cfg, rows)),
        "Assumptions (bench/paper_cost.py):\n\n" + assumptions_md(),
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/paper-gemma2-27b.yaml")
    ap.add_argument("--record", action="store_true", help="append the table to BENCHMARKS.md")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        rows = paper_stages(cfg)
    except (ConfigError, ValueError) as e:
        print(f"paper_cost: {e}", file=sys.stderr)
        return 2
    md = report(cfg, rows)
    print(md)
    if a.record:
        command = shlex.join([".venv/bin/python", "-m", "bench.paper_cost", *argv])
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(f"\n{HEADING}\n\n{time.strftime('%Y-%m-%d')}, config `{a.config}`. Command: `{command}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
