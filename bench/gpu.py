"""GPU speed in one short device session (issue 17, step 5): decode, SFT and GRPO tokens/s and model-FLOPs
utilisation (MFU) on random-weight models with SmolLM2-135M's shapes and Gemma-2's shapes scaled to fit.

Phases, each timed after a warm-up, each in its own try block (one that fails is reported, the rest run):

1. matmul: an 8192^3 bf16 product, the measured peak beside the nominal one (``--peak-tflops``, H200 ~790);
2. decode: the hf backend (grm.generation.hf.HFBackend) in bf16 at k = 8 and k = 32 samples per prompt,
   ``--prompts`` prompts of ~450 tokens, 128 new tokens, T = 1 (random weights never stop early);
3. sft: TRL's SFTTrainer steps (bf16 weights, as the pipeline's trainers load them on a GPU), sequences of
   ``--sft-len`` tokens;
4. grpo: TRL's GRPOTrainer steps with the SPCT rule reward (grm.training.grpo.SPCTReward), group size 8,
   128-token completions, KL beta 0.08, generation with transformers (vLLM's CUDA wheel is too large to carry
   to the device, so no vLLM rollouts here).

MFU counts model FLOPs as 2 x parameters per token forward (decode, generation, reference model) and
6 x parameters per token forward + backward (training); attention's score FLOPs are left out.

Usage (on the device; the SmolLM2 tokenizer and the wheels travel as ignored folders, see BENCHMARKS.md):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \\
        && PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 bench/gpu.py --out $OUT
    PYTHONPATH=. .venv/bin/python bench/gpu.py --cpu-smoke          # here: tiny sizes on the CPU, a minute or two

Writes gpu.json and gpu.md to ``--out`` (and prints the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

PROMPT_WORDS = ("Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
                "to the user question displayed below. Specific criteria: helpfulness, harmlessness, accuracy. ").split()


@dataclass(frozen=True)
class Shape:
    name: str
    arch: str  # llama | gemma2
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int  # the carried tokenizer's (49152) for both: sampled ids must decode

    def config(self):
        from transformers import Gemma2Config, LlamaConfig

        common = dict(hidden_size=self.hidden, intermediate_size=self.intermediate, num_hidden_layers=self.layers,
                      num_attention_heads=self.heads, num_key_value_heads=self.kv_heads, head_dim=self.head_dim,
                      vocab_size=self.vocab, max_position_embeddings=8192, tie_word_embeddings=True, bos_token_id=1,
                      eos_token_id=2, pad_token_id=2)
        if self.arch == "gemma2":
            return Gemma2Config(**common, sliding_window=4096)  # transformers runs Gemma-2 with eager attention
        return LlamaConfig(**common, rope_theta=100000.0)


SMOLLM2_135M = Shape("SmolLM2-135M shapes", "llama", 576, 1536, 30, 9, 3, 64, 49152)
# Gemma-2-2B's shapes (the paper's Gemma-2-27B has hidden 4608, 46 layers: not trainable with AdamW in one
# 15-minute session); the vocabulary is the carried tokenizer's, not Gemma's 256k
GEMMA2_SCALED = Shape("Gemma-2 shapes scaled (2B: hidden 2304, 26 layers)", "gemma2", 2304, 9216, 26, 8, 4, 256, 49152)
TINY = Shape("tiny smoke shape", "llama", 64, 128, 2, 1, 1, 64, 49152)
TINY_GEMMA = Shape("tiny gemma2 smoke shape", "gemma2", 64, 128, 2, 1, 1, 64, 49152)


@dataclass
class Sizes:
    prompts: int = 16
    prompt_words: int = 300  # ~450 tokens with the chat template
    ks: tuple[int, ...] = (8, 32)
    new_tokens: int = 128
    decode_repeats: int = 3
    sft_batch: int = 16
    sft_len: int = 1024
    sft_steps: int = 4
    grpo_prompts: int = 4
    grpo_group: int = 8
    grpo_steps: int = 3


SMOKE = Sizes(prompts=2, prompt_words=40, ks=(2,), new_tokens=8, decode_repeats=1, sft_batch=2, sft_len=64, sft_steps=2,
              grpo_prompts=2, grpo_group=2, grpo_steps=2)


def params_of(model) -> int:
    return sum(p.numel() for p in model.parameters())


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def build_model(shape: Shape, dev: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(shape.config(), dtype=dtype)
    return model


def save_model(shape: Shape, tokenizer_dir: Path, dev: torch.device, dtype: torch.dtype) -> tuple[Path, int]:
    """A random-weight model of ``shape`` with the carried tokenizer, saved as a folder the backends load."""
    from transformers import AutoTokenizer

    model = build_model(shape, dev, dtype)
    n = params_of(model)
    folder = Path(tempfile.mkdtemp(prefix="gpu-bench-model-"))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return folder, n


def prompt_text(i: int, words: int) -> str:
    return f"Question {i}: " + " ".join(PROMPT_WORDS[(i + j) % len(PROMPT_WORDS)] for j in range(words))


def phase_matmul(dev: torch.device, smoke: bool) -> dict:
    n = 512 if smoke else 8192
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(dev)
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(dev)
    s = (time.perf_counter() - t) / 10
    return {"n": n, "dtype": str(dtype), "seconds": s, "tflops": 2 * n**3 / s / 1e12}


def phase_decode(shape: Shape, sizes: Sizes, tokenizer_dir: Path, dev: torch.device, dtype: torch.dtype, peak: float) -> list[dict]:
    from grm.generation import Request, SamplingParams
    from grm.generation.hf import HFBackend

    folder, n_params = save_model(shape, tokenizer_dir, dev, dtype)
    backend = HFBackend(str(folder), device=dev.type, dtype=str(dtype).removeprefix("torch."), batch_size=sizes.prompts)
    chats = [[{"role": "user", "content": prompt_text(i, sizes.prompt_words)}] for i in range(sizes.prompts)]
    prompt_tokens = [len(backend.encode(c)) for c in chats]
    out = []
    for k in sizes.ks:
        reqs = [Request(f"p{i}", c, k, 1000 * i) for i, c in enumerate(chats)]
        params = SamplingParams(temperature=1.0, max_new_tokens=sizes.new_tokens)
        backend.generate(reqs[:1], SamplingParams(temperature=1.0, max_new_tokens=4))  # warm-up
        times, tokens = [], 0
        for _ in range(sizes.decode_repeats):
            sync(dev)
            t = time.perf_counter()
            res = backend.generate(reqs, params)
            sync(dev)
            times.append(time.perf_counter() - t)
            tokens = sum(s.n_tokens for r in res for s in r.samples)
        med = statistics.median(times)
        tps = tokens / med
        out.append({"phase": "decode", "shape": shape.name, "params": n_params, "k": k, "rows": k * sizes.prompts,
                    "prompt_tokens_mean": statistics.mean(prompt_tokens), "new_tokens": sizes.new_tokens, "tokens": tokens,
                    "seconds": times, "tokens_per_s": tps, "mfu": 2 * n_params * tps / peak,
                    "note": "prefill included in the time; tokens are generated tokens"})
    backend.close()
    return out


class StepTimer:
    """A TrainerCallback timing each optimizer step (device synchronised at both ends)."""

    def __init__(self, dev: torch.device):
        from transformers import TrainerCallback

        timer = self

        class CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                sync(dev)
                timer.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                sync(dev)
                timer.steps.append(time.perf_counter() - timer.started)

        self.steps: list[float] = []
        self.started = 0.0
        self.callback = CB()


def common_args(out_dir: Path, steps: int, batch: int, dev: torch.device) -> dict:
    return dict(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-5,
                logging_steps=1, save_strategy="no", report_to=[], bf16=dev.type == "cuda", use_cpu=dev.type != "cuda",
                dataloader_num_workers=0, disable_tqdm=True)


def phase_sft(shape: Shape, sizes: Sizes, tokenizer_dir: Path, dev: torch.device, dtype: torch.dtype, peak: float) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = build_model(shape, dev, dtype)
    n_params = params_of(model)
    text = " ".join(PROMPT_WORDS) * (sizes.sft_len // len(PROMPT_WORDS) * 2 + 2)  # longer than sft_len tokens
    rows = [{"text": f"{i} {text}"} for i in range(sizes.sft_batch * (sizes.sft_steps + 1))]
    timer = StepTimer(dev)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=Dataset.from_list(rows), callbacks=[timer.callback],
                         args=SFTConfig(**common_args(Path(tempfile.mkdtemp()), sizes.sft_steps, sizes.sft_batch, dev),
                                        max_length=sizes.sft_len, packing=False, dataset_num_proc=1))
    trainer.train()
    steady = timer.steps[1:] or timer.steps  # the first step includes kernel selection and optimizer-state allocation
    tokens = sizes.sft_batch * sizes.sft_len
    tps = tokens / statistics.median(steady)
    del trainer, model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"phase": "sft", "shape": shape.name, "params": n_params, "batch": sizes.sft_batch, "seq_len": sizes.sft_len,
            "tokens_per_step": tokens, "step_seconds": timer.steps, "tokens_per_s": tps, "mfu": 6 * n_params * tps / peak,
            "note": "first step left out of the median"}


def phase_grpo(shape: Shape, sizes: Sizes, tokenizer_dir: Path, dev: torch.device, dtype: torch.dtype, peak: float) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from grm.training.grpo import SPCTReward

    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    # from a folder: TRL builds the KL reference model from the policy's config path
    folder, n_params = save_model(shape, tokenizer_dir, dev, dtype)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(dev)
    g = sizes.grpo_group
    rows = [{"prompt": [{"role": "user", "content": prompt_text(i, sizes.prompt_words)}], "n_responses": 2, "best_shown": 0,
             "label": None, "binary": False} for i in range(sizes.grpo_prompts * (sizes.grpo_steps + 1))]
    timer = StepTimer(dev)
    logs: list[dict] = []
    from transformers import TrainerCallback

    class Keep(TrainerCallback):
        def on_log(self, args, state, control, logs_=None, **kw):
            logs.append(dict(kw.get("logs") or logs_ or {}))

    args = common_args(Path(tempfile.mkdtemp()), sizes.grpo_steps, sizes.grpo_prompts * g, dev)
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[SPCTReward(None)], train_dataset=Dataset.from_list(rows),
                          callbacks=[timer.callback, Keep()],
                          args=GRPOConfig(**args, num_generations=g, beta=0.08, temperature=1.0, loss_type="grpo",
                                          max_completion_length=sizes.new_tokens, use_bias_correction_kl=False,
                                          model_init_kwargs={"dtype": str(dtype).removeprefix("torch.")}))
    trainer.train()
    steady = timer.steps[1:] or timer.steps
    completion = [x["completions/mean_length"] for x in logs if "completions/mean_length" in x]
    prompt_tokens = len(tok.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
    per_seq = prompt_tokens + (statistics.mean(completion) if completion else sizes.new_tokens)
    seqs = sizes.grpo_prompts * g
    tokens = seqs * per_seq
    tps = tokens / statistics.median(steady)
    # generation (2P per token, prompt and completion), policy forward + backward (6P), reference forward (2P)
    mfu = 10 * n_params * tps / peak
    del trainer, model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"phase": "grpo", "shape": shape.name, "params": n_params, "sequences_per_step": seqs, "group": g,
            "prompt_tokens": prompt_tokens, "completion_tokens_mean": per_seq - prompt_tokens, "tokens_per_step": tokens,
            "step_seconds": timer.steps, "tokens_per_s": tps, "completion_tokens_per_s": seqs * (per_seq - prompt_tokens) / statistics.median(steady),
            "mfu": mfu, "note": "tokens = prompt + completion of every sequence; FLOPs 10 x params per token; first step left out"}


def table(results: list[dict], peak: float) -> str:
    lines = [f"MFU against {peak / 1e12:.0f} TFLOP/s", "", "| phase | shape | params | setting | tokens/s | MFU | runs (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['phase']} | {r.get('shape', '')} | | failed: {r['error'].splitlines()[0][:120]} | | | |")
            continue
        if r["phase"] == "matmul":
            lines.append(f"| matmul | {r['n']}^3 {r['dtype']} | | | {r['tflops']:.0f} TFLOP/s | {r['tflops'] * 1e12 / peak:.0%} | "
                         f"{r['seconds']:.4f} |")
            continue
        setting = {"decode": lambda: f"k={r['k']}, {r['rows']} rows, {r['new_tokens']} new tokens",
                   "sft": lambda: f"batch {r['batch']} x {r['seq_len']} tokens",
                   "grpo": lambda: f"{r['sequences_per_step']} sequences (group {r['group']}), "
                                   f"{r['completion_tokens_mean']:.0f} completion tokens"}[r["phase"]]()
        runs = r.get("seconds") or r.get("step_seconds")
        lines.append(f"| {r['phase']} | {r['shape']} | {r['params'] / 1e6:.0f}M | {setting} | {r['tokens_per_s']:.0f} | "
                     f"{r['mfu']:.1%} | {', '.join(f'{s:.2f}' for s in runs)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU: checks that every phase runs")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu-bench-")))
    ap.add_argument("--tokenizer", type=Path, default=ROOT / ".gpu-assets/tokenizer")
    ap.add_argument("--phases", default="matmul,decode,sft,grpo")
    ap.add_argument("--shapes", default="smollm2,gemma2")
    ap.add_argument("--peak-tflops", type=float, default=790.0, help="nominal bf16 peak (H200 dense: ~790)")
    a = ap.parse_args()

    smoke = a.cpu_smoke
    dev = torch.device("cpu" if smoke else "cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu-smoke here")
    dtype = torch.float32 if smoke else torch.bfloat16
    sizes = SMOKE if smoke else Sizes()
    shapes = {"smollm2": TINY if smoke else SMOLLM2_135M, "gemma2": TINY_GEMMA if smoke else GEMMA2_SCALED}
    peak = a.peak_tflops * 1e12
    phases = a.phases.split(",")
    started = time.time()
    results: list[dict] = []

    def run(phase: str, shape_name: str | None, fn) -> None:
        t = time.perf_counter()
        try:
            got = fn()
            for r in got if isinstance(got, list) else [got]:
                r["phase_seconds"] = time.perf_counter() - t
                results.append(r)
        except Exception as e:  # report and go on: one broken phase must not cost the session's other figures
            results.append({"phase": phase, "shape": shape_name, "error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"})
        print(f"[{time.time() - started:6.0f} s] {phase} {shape_name or ''}: {results[-1].get('tokens_per_s', results[-1].get('tflops', results[-1].get('error', '')))}",
              flush=True)
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "gpu.json").write_text(json.dumps(info | {"results": results}, indent=1, default=str))

    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__, "python": platform.python_version(),
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu", "smoke": smoke,
            "peak_tflops": a.peak_tflops}
    if "matmul" in phases:
        run("matmul", None, lambda: {"phase": "matmul", **phase_matmul(dev, smoke)})
    for key in a.shapes.split(","):
        shape = shapes[key]
        if "decode" in phases:
            run("decode", shape.name, lambda: phase_decode(shape, sizes, a.tokenizer, dev, dtype, peak))
        if "sft" in phases:
            run("sft", shape.name, lambda: phase_sft(shape, sizes, a.tokenizer, dev, dtype, peak))
        if "grpo" in phases:
            run("grpo", shape.name, lambda: phase_grpo(shape, sizes, a.tokenizer, dev, dtype, peak))
    text = f"{info['date']}, {info['device']}, torch {info['torch']}{' (CPU smoke run: sizes tiny, figures meaningless)' if smoke else ''}\n\n" + table(results, peak)
    (a.out / "gpu.md").write_text(text + "\n")
    print(text)
    print(f"total {time.time() - started:.0f} s; written to {a.out}")


if __name__ == "__main__":
    main()
