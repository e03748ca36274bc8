"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, transformers serve, a hosted judge).

The server applies the chat template. One request per prompt asks for its n samples at once when the server
accepts ``n`` (the prompt is then processed once); otherwise n requests with seeds s, s+1, ... are sent.
``supports_n: auto`` finds out on the first request with n > 1 (transformers serve answers 422).
Requests run with bounded concurrency and are retried with exponential backoff on 429, 5xx, timeouts and
connection errors. The API key is read from the environment variable named in the config; it is sent
in a header and appears in no message or log. With ``serve: true`` the backend starts ``vllm serve`` from
the configured vLLM environment, bound to 127.0.0.1 on a free port, and stops it at ``close()``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Sequence

import httpx

from grm.config import OpenAIConfig, VLLMConfig
from grm.generation.base import SKIPPED_TOO_LONG, Backend, BackendError, Request, Result, Sample, SamplingParams
from grm.generation.server import ManagedServer
from grm.model_loading import ModelTrust

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
# vLLM: "maximum context length is 2048 tokens. However, your prompt contains 2110 input tokens" (older
# versions and OpenAI: "... you requested 2126 tokens (2110 in the messages, 16 in the completion)")
_CONTEXT_ERR = re.compile(r"maximum context length is (\d+).*?(\d+) (?:input tokens|in the messages)", re.S)


class _TooLong(Exception):
    pass


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str, cfg: OpenAIConfig, *, vllm: VLLMConfig | None = None, max_model_len: int | None = None,
                 dtype: str | None = None, trust: ModelTrust = ModelTrust()):
        self.cfg = cfg
        self.server: ManagedServer | None = None
        key = None
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise BackendError(f"api_key_env names {cfg.api_key_env!r}, which is not set in the environment "
                                   f"(the key of {cfg.base_url or 'the served model'})")
        if cfg.serve:
            self.server = ManagedServer.vllm_serve(model, vllm or VLLMConfig(), cfg.serve_args, max_model_len=max_model_len,
                                                   dtype=dtype, trust=trust)
            base_url = self.server.base_url
        elif cfg.base_url:
            base_url = cfg.base_url.rstrip("/")
        else:
            raise BackendError("generation.openai needs base_url, or serve: true to start vllm serve")
        self.base_url = base_url
        self.model = cfg.model or model
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(timeout=cfg.timeout_s, headers=headers)
        self._supports_n: bool | None = {"yes": True, "no": False}.get(cfg.supports_n)
        self._n_lock = threading.Lock()

    # ---- one HTTP call, with retries -----------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            try:
                r = self._http.post(url, json=body)
            except httpx.TimeoutException as e:
                last = f"timed out after {self.cfg.timeout_s:g} s ({type(e).__name__})"
                continue
            except httpx.TransportError as e:
                last = f"cannot reach the server ({type(e).__name__}: {e})"
                continue
            if r.status_code == 200:
                return r.json()
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                continue
            if r.status_code in (400, 413, 422) and ("context length" in r.text or "too long" in r.text):
                raise _TooLong(r.text)
            raise _Rejected(r.status_code, r.text[:500])
        raise BackendError(f"openai backend: POST {url} failed after {self.cfg.max_retries + 1} attempts: {last}")

    def _body(self, req: Request, params: SamplingParams, n: int, seed: int) -> dict:
        body = {
            "model": self.model,
            "messages": [dict(m) for m in req.messages],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "seed": seed,
        }
        if params.top_p < 1.0:
            body["top_p"] = params.top_p
        if n > 1:
            body["n"] = n
        return body

    @staticmethod
    def _samples(resp: dict, first_seed: int) -> list[Sample]:
        choices = sorted(resp.get("choices", []), key=lambda c: c.get("index", 0))
        tokens = (resp.get("usage") or {}).get("completion_tokens", 0) if len(choices) == 1 else 0
        return [
            Sample(c["message"].get("content") or "", first_seed + i, tokens, c.get("finish_reason") or "stop")
            for i, c in enumerate(choices)
        ]

    # ---- one prompt ----------------------------------------------------------------------------------
    def _one(self, req: Request, params: SamplingParams) -> Result:
        if req.n <= 0:
            return Result(req.prompt_id, [])
        if params.temperature <= 0 and req.n > 1:  # greedy samples are all the same: ask for one, copy it
            one = self._one(Request(req.prompt_id, req.messages, 1, req.seed), params)
            return Result(req.prompt_id, [replace(one.samples[0], seed=req.seed + i) for i in range(req.n)] if one.samples else [],
                          skipped=one.skipped)
        try:
            if req.n > 1 and self._supports_n is not False:
                try:
                    samples = self._samples(self._post(self._body(req, params, req.n, req.seed)), req.seed)
                    if len(samples) == req.n:
                        self._supports_n = True
                        return Result(req.prompt_id, samples)
                except _Rejected as e:
                    if self._supports_n is True or e.status not in (400, 422):
                        raise
                with self._n_lock:
                    self._supports_n = False  # the server rejects or ignores n: send one request per sample
            samples = []
            for i in range(req.n):
                samples += self._samples(self._post(self._body(req, params, 1, req.seed + i)), req.seed + i)
            return Result(req.prompt_id, samples)
        except _TooLong as e:
            return Result(req.prompt_id, [], skipped=_too_long_reason(str(e), params.max_new_tokens))
        except _Rejected as e:
            raise BackendError(f"openai backend: the server rejected prompt {req.prompt_id!r}: HTTP {e.status}: {e.text}") from None

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[Result]:
        if self.server is not None:
            self.server.check_alive()
        reqs = list(requests)
        if not reqs:
            return []
        # settle whether n works on the first prompt that needs it before fanning out
        first = next((i for i, r in enumerate(reqs) if r.n > 1), None) if self._supports_n is None else None
        done: dict[int, Result] = {}
        if first is not None:
            done[first] = self._one(reqs[first], params)
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            futs = {i: pool.submit(self._one, r, params) for i, r in enumerate(reqs) if i not in done}
            for i, f in futs.items():
                done[i] = f.result()
        return [done[i] for i in range(len(reqs))]

    def close(self) -> None:
        self._http.close()
        if self.server is not None:
            self.server.stop()
            self.server = None


class _Rejected(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text}")
        self.status, self.text = status, text


def _too_long_reason(text: str, max_new_tokens: int) -> str:
    """The server's context-length error in the backends' common form, when its numbers can be read."""
    m = _CONTEXT_ERR.search(text)
    if m:
        limit, prompt = int(m.group(1)), int(m.group(2))
        return f"{SKIPPED_TOO_LONG}: {prompt} > {limit - max_new_tokens} tokens"
    return f"{SKIPPED_TOO_LONG}: {text[:200]}"
