"""Does pinning CPU numerics make two machines agree, and what does it cost? (issue 18, item 3; not a test)

    .venv/bin/python -m bench.cpu_numerics [--steps 150] [--corpus 6000] [--repeats 2]

The offline default's training took another path on a CPU without AVX-512 (README, "The offline default").
This bench trains the tiny config's bootstrap model (configs/tiny.yaml's shapes, shortened) in a fresh process
per setting and compares the trained weights (sha256 of model.safetensors) and the loss curve:

- ``native``: this machine as it is (MKL, oneDNN and ATen's kernels pick the widest ISA, AVX-512 here);
- ``as-avx2``: the same machine made to run the code paths of a CPU without AVX-512 (ATen capped to AVX2,
  MKL told to use AVX2 instructions, oneDNN capped): a stand-in for the AMD EPYC of the report;
- ``pinned`` and ``pinned as-avx2``: both with ``models.cpu_numerics: pinned`` (grm/cpu_numerics.py: MKL's
  conditional numerical reproducibility on its AVX2 branch, ATen's and oneDNN's kernels on AVX2).

If ``native`` and ``as-avx2`` differ while the two pinned runs agree, pinning makes machines with AVX2 agree;
the cost is pinned's time against native's, side by side in one run (``--repeats`` alternating rounds, median).
A real second machine (another vendor's CPU, another MKL dispatch) is the test this cannot replace.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grm.cpu_numerics import PINNED  # what models.cpu_numerics: pinned sets

ROOT = Path(__file__).resolve().parents[1]

AS_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
SETTINGS = {
    "native": {},
    "as-avx2": AS_AVX2,
    "pinned": PINNED,
    "pinned as-avx2": {**AS_AVX2, **PINNED},
}

CHILD = r"""
import hashlib, json, os, sys, time
import torch
from grm.config import load_config
from grm.miniworld.bootstrap import bootstrap
from grm.prompts import Templates
steps, corpus, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cfg = load_config("configs/tiny.yaml", [f"bootstrap.corpus_items={corpus}"])
boot = cfg.bootstrap.model_copy(update={"train": cfg.bootstrap.train.model_copy(update={"max_steps": steps})})
losses = []
stats = bootstrap(out, cfg.data.miniworld, boot, Templates.configured(cfg), max_length=cfg.models.max_length,
                  seed=cfg.seed, log=lambda m: losses.append(m))
weights = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
print("RESULT " + json.dumps({"weights": weights, "final_loss": stats.final_loss, "train_seconds": stats.train_seconds,
                             "capability": torch.backends.cpu.get_cpu_capability(), "log": losses[-3:]}))
"""


def run(setting: str, steps: int, corpus: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {**AS_AVX2, **PINNED}}  # only this setting's
    env.update({"OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT), **SETTINGS[setting]})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(corpus), tmp], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{setting}: the training child failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(line[len("RESULT "):]), "wall": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--corpus", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    results: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for _ in range(args.repeats):  # alternating rounds: the machine's load drifts alike over every setting
        for s in SETTINGS:
            results[s].append(run(s, args.steps, args.corpus))
            print(s, {k: v for k, v in results[s][-1].items() if k != "log"}, flush=True)
    lines = [f"| setting | ATen kernels | weights (sha256, first 12) | same on every repeat | final loss | "
             f"train s (median of {args.repeats}) | time vs native |", "|---|---|---|---|---|---|---|"]
    native = statistics.median(r["train_seconds"] for r in results["native"])
    for s, rs in results.items():
        t = statistics.median(r["train_seconds"] for r in rs)
        lines.append(f"| {s} | {rs[0]['capability']} | {rs[0]['weights'][:12]} | "
                     f"{'yes' if len({r['weights'] for r in rs}) == 1 else 'no'} | {rs[0]['final_loss']:.5f} | "
                     f"{t:.1f} | {t / native:.2f}x |")
    w = {s: rs[0]["weights"] for s, rs in results.items()}
    verdict = (f"native vs as-avx2: {'same' if w['native'] == w['as-avx2'] else 'different'} weights; "
               f"pinned vs pinned as-avx2: {'same' if w['pinned'] == w['pinned as-avx2'] else 'different'} weights.")
    print("\n".join(lines) + "\n\n" + verdict)
    print(f"\nCommand: `.venv/bin/python -m bench.cpu_numerics --steps {args.steps} --corpus {args.corpus} "
          f"--repeats {args.repeats}` ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
