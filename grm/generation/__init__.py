"""Generation backends (docs/design.md, "Sampling"): one interface (``base.Backend``), built from the config here."""

from __future__ import annotations

from grm.config import GenerationConfig
from grm.generation.base import Backend, BackendError, Request, Result, Sample, SamplingParams
from grm.model_loading import ModelTrust, UnsafeModelError, check_model

__all__ = ["Backend", "BackendError", "Request", "Result", "Sample", "SamplingParams", "make_backend"]


def make_backend(model_path: str, gen_cfg: GenerationConfig, *, dtype: str = "auto", max_model_len: int | None = None,
                 trust: ModelTrust = ModelTrust()) -> Backend:
    """The backend named by ``generation.backend`` for the model at ``model_path`` (a local folder, or for
    ``openai`` the served model's name when ``generation.openai.model`` is not set). ``dtype``,
    ``max_model_len`` and ``trust`` come from the ``models`` section (``models.dtype``, ``models.max_length``,
    ``models.allow_pickle`` / ``trust_remote_code``)."""
    if gen_cfg.backend != "openai" or gen_cfg.openai.serve:  # a model this machine loads
        try:
            check_model(model_path, trust)
        except UnsafeModelError as e:
            raise BackendError(str(e)) from None
    if gen_cfg.backend == "hf":
        from grm.generation.hf import HFBackend

        return HFBackend(model_path, device=gen_cfg.device, dtype=dtype, batch_size=gen_cfg.batch_size, max_model_len=max_model_len,
                         trust=trust)
    if gen_cfg.backend in ("openai", "vllm"):
        from grm.generation.server import on_cpu, vllm_dtype

        # the vLLM engine's precision (ours or the `vllm serve` we start): never one a CPU only emulates
        vdtype = vllm_dtype(gen_cfg.vllm, dtype, cpu=on_cpu(gen_cfg.device))
    if gen_cfg.backend == "openai":
        from grm.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(model_path, gen_cfg.openai, vllm=gen_cfg.vllm, max_model_len=max_model_len, dtype=vdtype,
                             trust=trust)
    if gen_cfg.backend == "vllm":
        from grm.generation.vllm_backend import VLLMBackend

        return VLLMBackend(model_path, gen_cfg.vllm, max_model_len=max_model_len, dtype=vdtype, trust=trust)
    raise BackendError(f"generation.backend {gen_cfg.backend!r} is not available in this build")
