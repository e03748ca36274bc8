"""The vLLM backend: an in-process ``vllm.LLM`` inside a long-lived child process.

The child runs with the vLLM environment's Python (``generation.vllm.python``, or ``$GRM_VLLM_PYTHON``):
vLLM pins versions the pipeline's environment cannot take, and a child returns its (GPU) memory when it
ends. One child per backend instance serves every shard; ``close()`` ends it. Requests and replies are
JSON lines over two dedicated pipes (see vllm_worker.py); the child's own output goes to a log file whose
tail is quoted when it dies (out of memory, crash).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from grm.config import VLLMConfig
from grm.generation.base import Backend, BackendError, Request, Result, Sample, SamplingParams
from grm.generation.server import _child_env, tail, vllm_engine_args, vllm_python
from grm.model_loading import ModelTrust

WORKER_MODULE = "grm.generation.vllm_worker"  # run as a script by the vLLM environment's python
WORKER = Path(__file__).with_name(WORKER_MODULE.rpartition(".")[2] + ".py")


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model_path: str, cfg: VLLMConfig, *, max_model_len: int | None = None, startup_s: float = 900,
                 dtype: str | None = None, trust: ModelTrust = ModelTrust()):
        py = vllm_python(cfg)
        config = {"model": str(model_path), "engine_args": vllm_engine_args(cfg, max_model_len, dtype, trust)}
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        fd, log = tempfile.mkstemp(prefix="grm-vllm-worker-", suffix=".log")
        self.log = Path(log)
        with os.fdopen(fd, "wb") as out:
            self.proc = subprocess.Popen(
                [py, str(WORKER), str(req_r), str(rep_w), json.dumps(config)],
                pass_fds=(req_r, rep_w), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **_child_env()}, start_new_session=True,
            )
        os.close(req_r)
        os.close(rep_w)
        self._requests = os.fdopen(req_w, "w", buffering=1)
        self._replies = os.fdopen(rep_r, "r")
        self._lock = threading.Lock()  # one engine, one exchange at a time
        try:
            hello = self._read(startup_s, "starting")
        except BackendError:
            self.close()
            raise
        if "error" in hello:
            self.close()
            raise BackendError(f"vllm worker could not start: {hello['error']}; last output:\n{tail(self.log)}")
        self.max_model_len = hello["max_model_len"]

    def _dead(self, doing: str) -> BackendError:
        code = self.proc.poll()
        state = f"exited with code {code}" if code is not None else "stopped answering"
        return BackendError(f"vllm worker {state} while {doing} (pid {self.proc.pid}); last output:\n{tail(self.log)}")

    def _read(self, timeout_s: float | None, doing: str) -> dict:
        deadline = None if timeout_s is None else time.time() + timeout_s
        while True:
            ready, _, _ = select.select([self._replies], [], [], 1.0)
            if ready:
                line = self._replies.readline()
                if not line:  # EOF: the child is gone
                    self.proc.wait(timeout=10)
                    raise self._dead(doing)
                return json.loads(line)
            if self.proc.poll() is not None:
                raise self._dead(doing)
            if deadline is not None and time.time() > deadline:
                raise self._dead(doing)

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[Result]:
        if not requests:
            return []
        msg = {
            "requests": [{"id": r.prompt_id, "messages": [dict(m) for m in r.messages], "n": r.n, "seed": r.seed} for r in requests],
            "params": {"temperature": params.temperature, "top_p": params.top_p, "max_new_tokens": params.max_new_tokens},
        }
        with self._lock:
            if self.proc.poll() is not None:
                raise self._dead("idle")
            try:
                self._requests.write(json.dumps(msg) + "\n")
                self._requests.flush()
            except BrokenPipeError:
                raise self._dead(f"receiving {len(requests)} prompts") from None
            reply = self._read(None, f"generating {len(requests)} prompts")
        if "error" in reply:
            raise BackendError(
                f"vllm worker failed on a batch of {len(requests)} prompts: {reply['error']}; last output:\n{tail(self.log)}"
            )
        out = []
        for req, res in zip(requests, reply["results"]):
            samples = [Sample(s["text"], req.seed + j, s["n_tokens"], s["finish"]) for j, s in enumerate(res["samples"])]
            out.append(Result(req.prompt_id, samples, skipped=res["skipped"], prompt_tokens=res["prompt_tokens"]))
        return out

    def close(self) -> None:
        for f in (self._requests, self._replies):
            try:
                f.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=30)  # the child exits on EOF of its request pipe
            except subprocess.TimeoutExpired:
                pass
        try:  # the worker and vLLM's engine processes it spawned (its own session)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.log.unlink(missing_ok=True)
