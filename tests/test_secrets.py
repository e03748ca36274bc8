"""Secrets: a `grm run` whose sampler is an OpenAI-compatible endpoint (the openai backend, on a local server)
with a canary API key in the environment. The key reaches the server, and nothing else: not the store (Parquet,
manifests, work folders, the stage cache in .prefect), not Prefect's database (its artifacts, logs, run
parameters), not the run's output."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

from storage import Store
from tests.fake_chat_server import ChatHandler, chat_server

ROOT = Path(__file__).resolve().parents[1]
CANARY_VAR, CANARY = "GRM_CANARY_API_KEY", "sk-canary-4f1d9e77c2a8b35e06"
RESPONSE = re.compile(r"\[Start of Response (\d+)\]\n(.*?)\n\[End of Response \1\]", re.S)


class Judge(ChatHandler):
    """Scores responses holding GOOD 9 and the others 2."""

    def reply(self, body):
        shown = [r for _, r in RESPONSE.findall(body["messages"][-1]["content"])]
        box = ", ".join("9" if "GOOD" in r else "2" for r in shown)
        return 200, [f"Specific Criteria: correctness.\nAnalysis: checked.\nScores: \\boxed{{{box}}}"] * body.get("n", 1)


def forms(secret: str) -> list[bytes]:
    """The secret as bytes, and base64-encoded at each of the three alignments (as inside an encoded blob)."""
    raw = secret.encode()
    return [raw] + [base64.b64encode(b"x" * i + raw)[4 if i else 0:][:len(raw)] for i in range(3)]


def files_holding(root: Path, secret: str) -> list[str]:
    needles = forms(secret)
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_the_scan_finds_the_key_raw_or_inside_base64(tmp_path):
    for i, blob in enumerate([b"k=" + CANARY.encode(), base64.b64encode(b"pickle" + CANARY.encode()),
                              base64.b64encode(b"pickled" + CANARY.encode() + b"!")]):
        (tmp_path / f"f{i}").write_bytes(blob)
    (tmp_path / "clean").write_bytes(base64.b64encode(b"nothing secret here at all"))
    assert sorted(Path(p).name for p in files_holding(tmp_path, CANARY)) == ["f0", "f1", "f2"]


def test_a_canary_api_key_reaches_the_endpoint_and_nowhere_else(tmp_path):
    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"id": "{i}", "query": "question {i}", "chosen": "GOOD {i}", "rejected": "bad {i}"}}\n'
                            for i in range(4)))
    home, store = tmp_path / "prefect", Store(tmp_path / "store")
    with chat_server(Judge) as (_, url):
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            f"data:\n  sources:\n    - {{name: mine, format: generic, paths: [{data}], split: train}}\n"
            f"rft:\n  sampler: {{base_url: '{url}', model: teacher-v1, api_key_env: {CANARY_VAR}}}\n"
            "  n_samples: 2\n  hinted: false\n"
            "generation: {max_new_tokens: 32, shard_size: 2}\n"
        )
        env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", CANARY_VAR: CANARY}
        env.pop("PREFECT_API_URL", None)
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(cfg), "--store", str(store.root),
                               "--only", "curate", "--only", "rft_sample"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert Judge.calls and all(c["auth"] == f"Bearer {CANARY}" for c in Judge.calls)  # the key was used
    assert len(store.read_rows(store.table("rft_samples"))) == 4 * 2
    assert CANARY_VAR in cfg.read_text() and (store.root / ".prefect" / "results").is_dir()
    assert list(home.rglob("*.db")), "Prefect's database (artifacts, logs, run records) is where the scan expects it"
    leaks = files_holding(store.root, CANARY) + files_holding(home, CANARY)
    assert not leaks, f"the canary key was written to {leaks}"
    assert not any(n.decode() in proc.stdout + proc.stderr for n in forms(CANARY))
