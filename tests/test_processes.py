"""Children do not outlive what started them: a Ctrl-C (SIGINT) or a SIGKILL to `grm run` during a trainer stage
leaves no trainer, no Prefect server and nothing else alive (interrupted, the run stops them; killed, they see it
is gone: grm.parent_watch); SIGTERM unwinds like Ctrl-C; a child server started in its own session is stopped
with everything it started. (The whole-suite check is tests/conftest.py's pytest_sessionfinish.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Store
from tests.leftover_processes import describe, descendants, kill, wait_gone

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

ROOT = Path(__file__).resolve().parents[1]

ITEM = {"item_id": "i0", "source": "unit", "format": "test", "split": "train", "subset": "s",
        "conversation": [{"role": "user", "content": "pick"}], "responses": ["GOOD", "bad"], "label_kind": "best",
        "best": 0, "ratings": None, "meta": None}


def accepted_sample(i: int) -> dict:
    return {"item_id": "i0", "sample_idx": i, "hinted": False, "seed": i, "permutation": [0, 1],
            "prompt": "Judge: pick\n[1] GOOD\n[2] bad", "completion": "Scores: \\boxed{9, 2}", "scores": [9, 2],
            "parse_status": "ok", "principles": "", "critique": "", "correct": True, "accepted": True,
            "reject_reason": None, "source": "unit", "n_responses": 2}


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"grm run exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} after {timeout:g} s")


def _as_from_a_terminal() -> None:
    """A test run started in the background (`nohup pytest &`, some CI shells) ignores SIGINT, and an ignored
    signal stays ignored in every program it starts: `grm run` would never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow  # a grm run into a trainer stage: in the full suite, not in make test-reliability
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_stopping_grm_run_in_a_trainer_stage_leaves_no_child_alive(tmp_path, tiny_model_dir, sig):
    store = Store(tmp_path / "store")
    store.write_table("items", [ITEM])
    store.write_table("rft_samples", [accepted_sample(i) for i in range(4)])
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"models: {{base: {tiny_model_dir}, dtype: float32, max_length: 128}}\n"
        "generation: {device: cpu}\n"
        # far more steps than the test waits for: the trainer is mid-run when the signal comes
        "rft:\n  train: {learning_rate: 1.0e-3, batch_size: 1, per_device_batch_size: 1, max_steps: 100000, save_steps: 100000}\n"
    )
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--config", str(cfg), "--store", str(store.root),
                             "--only", "rft_train"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=_as_from_a_terminal)
    try:
        pid_file = _wait_for(lambda: next((store.root / "work" / "rft_train").glob("*/child.pid"), None), 240, proc,
                             "trainer child")
        trainer = int(_wait_for(lambda: pid_file.read_text().strip() if pid_file.exists() else "", 30, proc, "trainer pid"))
        time.sleep(3)  # the trainer is importing torch / training
        children = descendants(proc.pid)
        assert trainer in {p.pid for p in children}
        assert any("uvicorn" in " ".join(p.cmdline()) for p in children)  # Prefect's temporary server
        proc.send_signal(sig)  # to `grm run` alone, not its group: it must stop what it started
        out, _ = proc.communicate(timeout=300)  # generous: on a loaded machine the unwinding (trainer, Prefect) is slow
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = wait_gone(children, timeout=30)
    leftovers = describe(left)
    kill(left)
    assert not leftovers, "\n".join(map(str, leftovers))
    assert proc.returncode != 0
    if sig != signal.SIGKILL:
        assert "grm run: interrupted" in out, out[-3000:]


def test_sigterm_unwinds_grm_run_like_ctrl_c():
    """The SIGTERM handler `grm run` installs raises KeyboardInterrupt, the path the SIGINT run above takes."""
    from flows.cli_run import _interrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode boundary
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_prefects_temporary_server_runs_prefects_own_command_under_the_watch(monkeypatch):
    """flows/temporary_server.py replaces Prefect's command for its temporary server by the same one run through
    grm.parent_watch: still the same after a Prefect upgrade?"""
    import subprocess as sp
    from types import SimpleNamespace

    from flows.temporary_server import _run_uvicorn_command, prefect_command

    started = []
    monkeypatch.setattr(sp, "Popen", lambda args, env: started.append((list(args), env)))
    server = SimpleNamespace(port=8765)
    prefect_command(server)
    _run_uvicorn_command(server)
    (theirs, their_env), (ours, our_env) = started
    assert ours == [sys.executable, "-m", "grm.parent_watch", str(os.getpid()), *theirs[1:]]
    assert our_env == their_env


def test_a_child_server_in_its_own_session_is_stopped_with_the_processes_it_started(tmp_path):
    """vllm serve starts engine processes; stopping the server stops them too (its whole process group)."""
    from grm.generation.server import ManagedServer, free_port

    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "import http.server, subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])  # its engine process\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    server = ManagedServer([sys.executable, str(script)], port, startup_s=60, name="server")
    engine = _wait_for(lambda: [p for p in descendants(server.proc.pid)], 30, server.proc, "engine process")
    server.stop()
    left = wait_gone(engine, timeout=10)
    kill(left)
    assert not left
