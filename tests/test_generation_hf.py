"""The transformers backend: greedy equals transformers' own greedy decoding, seeded samples reproduce
whatever else is in the batch, and an over-long prompt is skipped with its reason."""

import pytest
import torch

from grm.generation.base import Request, SamplingParams
from grm.generation.hf import _STANDARD_ATTENTION, HFBackend, process_logits
from tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", max_positions=128))


@pytest.fixture(scope="module")
def backend(model_dir):
    with HFBackend(model_dir, device="cpu", batch_size=4) as b:
        yield b


def chat(text):
    return [{"role": "user", "content": text}]


PROMPTS = ["judge the answer", "a longer prompt about the helpful and harmless response score", "code"]


def test_greedy_equals_transformers_generate(backend):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(backend.model.name_or_path)
    tok = backend.tokenizer
    reqs = [Request(f"p{i}", chat(t), 1, 0) for i, t in enumerate(PROMPTS)]
    ours = backend.generate(reqs, SamplingParams(temperature=0, max_new_tokens=12))
    texts = [tok.apply_chat_template(chat(t), add_generation_prompt=True, tokenize=False) for t in PROMPTS]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert tok.padding_side == "left"
    out = model.generate(**enc, do_sample=False, max_new_tokens=12)
    ref = [tok.decode([t for t in row[enc["input_ids"].shape[1]:].tolist() if t not in (tok.pad_token_id,)], skip_special_tokens=True) for row in out]
    assert [r.samples[0].text for r in ours] == ref
    assert all(r.samples[0].n_tokens > 0 for r in ours)
    many = backend.generate([Request("g", chat(PROMPTS[0]), 3, 10)], SamplingParams(temperature=0, max_new_tokens=12))
    assert [s.text for s in many[0].samples] == [ref[0]] * 3 and [s.seed for s in many[0].samples] == [10, 11, 12]


def test_seeded_samples_reproduce_and_do_not_depend_on_the_batch(backend):
    params = SamplingParams(temperature=1.0, max_new_tokens=10, top_p=0.95)
    reqs = [Request(f"p{i}", chat(t), 4, 100 + i) for i, t in enumerate(PROMPTS)]
    first = backend.generate(reqs, params)
    again = backend.generate(reqs, params)
    alone = backend.generate([reqs[1]], params)
    texts = lambda rs: [[s.text for s in r.samples] for r in rs]
    assert texts(first) == texts(again)
    assert texts(alone)[0] == texts(first)[1]
    assert all(len(r.samples) == 4 for r in first)
    assert [s.seed for s in first[2].samples] == [102, 103, 104, 105]
    assert len(set(texts(first)[0])) > 1  # the n samples of one prompt differ
    other = backend.generate([Request("p1", chat(PROMPTS[1]), 4, 999)], params)
    assert texts(other)[0] != texts(first)[1]
    # sample i of seed s is sample 0 of seed s + i
    shifted = backend.generate([Request("p1", chat(PROMPTS[1]), 1, 102)], params)
    assert shifted[0].samples[0].text == first[1].samples[1].text


def test_over_long_prompt_is_skipped_with_its_reason(backend):
    params = SamplingParams(temperature=0, max_new_tokens=32)
    long = " ".join(["helpful"] * 200)
    res = backend.generate([Request("ok", chat("hi"), 2, 0), Request("long", chat(long), 2, 0)], params)
    assert len(res[0].samples) == 2 and res[0].skipped is None
    assert res[1].samples == [] and res[1].skipped.startswith("prompt_too_long: ")
    n = len(backend.encode(chat(long)))
    assert res[1].skipped == f"prompt_too_long: {n} > {128 - 32} tokens"


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = process_logits(logits, 1.0, 0.75).isfinite()[0].tolist()
    assert kept == [True, True, False, False]
    assert process_logits(logits, 1.0, 0.1).isfinite()[0].tolist() == [True, False, False, False]


# ---- shared prompt KV ("cascade" attention) against the expanded cache --------------------------------------

def tiny_variant(folder, base_dir, arch: str, seed: int = 1, **overrides):
    """A tiny random model of model type ``arch`` with grouped-query attention (4 query heads, 2 KV heads),
    sharing the tiny LM's tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    common = dict(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32, max_position_embeddings=256, tie_word_embeddings=True,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, initializer_range=0.1)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **{**common, **overrides}))
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def gqa_dir(model_dir, tmp_path_factory):
    return tiny_variant(tmp_path_factory.mktemp("gqa") / "lm", model_dir, "llama")


def record_steps(backend, monkeypatch):
    """Per decode step, the logits of each active row by (prompt, seed), as the sampler sees them."""
    from grm.generation.hf import HFBackend

    steps = []

    def choose(logits, rows, params):
        steps.append({(r.request, r.seed): logits[i].double().clone() for i, r in enumerate(rows)})
        return HFBackend._choose(logits, rows, params)

    monkeypatch.setattr(backend, "_choose", choose)
    return steps


# three prompts of different lengths (left padding), unequal n
CASCADE_REQS = [Request("a", chat(PROMPTS[1]), 5, 7), Request("b", chat(PROMPTS[0]), 3, 70), Request("c", chat(PROMPTS[2] + " math"), 4, 700)]


def stop_often(*backends):
    """A random tiny model rarely samples EOS: 32 more stop tokens (about 6% a step) end rows at different steps."""
    for b in backends:
        b.eos_ids = b.eos_ids | set(range(100, 132))


@pytest.mark.parametrize("kernel", ["fused", "matmul"])
@pytest.mark.parametrize("which", ["mistral", "llama-gqa"])
def test_shared_prefix_logits_equal_the_expanded_cache_at_every_step(which, kernel, model_dir, gqa_dir, monkeypatch):
    import grm.generation.hf as hf

    if kernel == "fused":
        assert hf._FLASH_CPU is not None  # this torch has its fused CPU attention with log-sum-exp
    else:  # the matmul path, for a torch without it (and GPUs)
        monkeypatch.setattr(hf, "_FLASH_CPU", None)
    folder = model_dir if which == "mistral" else gqa_dir
    params = SamplingParams(temperature=1.0, max_new_tokens=40, top_p=1.0)
    with HFBackend(folder, device="cpu", batch_size=4) as shared, HFBackend(folder, device="cpu", batch_size=4, shared_prefix=False) as expanded:
        assert shared.shared_prefix_off is None and expanded.shared_prefix_off == "turned off"
        got, want = record_steps(shared, monkeypatch), record_steps(expanded, monkeypatch)
        stop_often(shared, expanded)
        res_shared, res_expanded = shared.generate(CASCADE_REQS, params), expanded.generate(CASCADE_REQS, params)
        assert shared.decode_paths == {"shared": 1, "expanded": 0} and expanded.decode_paths == {"shared": 0, "expanded": 1}
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()  # the same rows still decoding
        torch.testing.assert_close(torch.stack(list(a.values())), torch.stack([b[k] for k in a]), atol=1e-5, rtol=1e-5)
    # the case is the one meant: rows dropped at several steps, a prompt gone while others decode, unequal rows per prompt
    active = [len(s) for s in got]
    assert active[0] == 12 and len(set(active)) >= 4
    prompts = [len({p for p, _ in s}) for s in got]
    assert any(p < 3 for p in prompts)
    counts = [sorted(sum(1 for q, _ in s if q == p) for p in range(3)) for s in got]
    assert any(len(set(c)) > 1 for c in counts)
    texts = lambda rs: [[(s.text, s.n_tokens, s.finish_reason) for s in r.samples] for r in rs]
    assert texts(res_shared) == texts(res_expanded)


def test_shared_prefix_greedy_text_equals_the_expanded_cache(gqa_dir):
    params = SamplingParams(temperature=0, max_new_tokens=24)
    reqs = [Request(f"p{i}", chat(t), 2, i) for i, t in enumerate(PROMPTS + ["the helpful score of the code answer"])]
    with HFBackend(gqa_dir, device="cpu", batch_size=3) as shared, HFBackend(gqa_dir, device="cpu", batch_size=3, shared_prefix=False) as expanded:
        a, b = shared.generate(reqs, params), expanded.generate(reqs, params)
        assert shared.decode_paths["shared"] == 2 and expanded.decode_paths["expanded"] == 2
    texts = lambda rs: [[(s.text, s.n_tokens) for s in r.samples] for r in rs]
    assert texts(a) == texts(b)
    assert len({t for r in texts(a) for t in r}) > 1


@pytest.mark.parametrize("arch", sorted(_STANDARD_ATTENTION))
def test_shared_prefix_seeded_samples_equal_the_expanded_cache_float64(arch, model_dir, gqa_dir, tmp_path):
    """Every model type the shared-prefix attention is allowed for."""
    folder = gqa_dir if arch == "llama" else tiny_variant(tmp_path / arch, model_dir, arch)
    params = SamplingParams(temperature=0.9, max_new_tokens=32, top_p=0.9)
    with HFBackend(folder, device="cpu", dtype="float64", batch_size=4) as shared, \
            HFBackend(folder, device="cpu", dtype="float64", batch_size=4, shared_prefix=False) as expanded:
        stop_often(shared, expanded)
        a, b = shared.generate(CASCADE_REQS, params), expanded.generate(CASCADE_REQS, params)
        assert shared.decode_paths["shared"] == 1 and expanded.decode_paths["expanded"] == 1
    texts = lambda rs: [[(s.text, s.seed, s.n_tokens, s.finish_reason) for s in r.samples] for r in rs]
    assert texts(a) == texts(b)
    assert len({s.text for r in a for s in r.samples}) > 6 and len({s.n_tokens for r in a for s in r.samples}) > 2


def greedy_reference(folder, prompts, max_new_tokens):
    """transformers' own greedy decoding (its own cache and masks) of ``prompts``, left-padded in one batch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    texts = [tok.apply_chat_template(chat(t), add_generation_prompt=True, tokenize=False) for t in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens)
    return [tok.decode([t for t in row[enc["input_ids"].shape[1]:].tolist() if t != tok.pad_token_id], skip_special_tokens=True)
            for row in out]


def test_softcapping_model_decodes_with_the_expanded_cache(model_dir, tmp_path):
    from transformers import LlamaConfig

    from grm.generation.hf import shared_prefix_blocker

    folder = tiny_variant(tmp_path / "gemma2", model_dir, "gemma2", attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                          sliding_window=4096, query_pre_attn_scalar=32)
    params = SamplingParams(temperature=0, max_new_tokens=12)
    with HFBackend(folder, device="cpu", batch_size=4) as backend:
        assert backend.shared_prefix_off == "attention logit softcapping"
        ours = backend.generate([Request(f"p{i}", chat(t), 2, 0) for i, t in enumerate(PROMPTS)], params)
        assert backend.decode_paths == {"shared": 0, "expanded": 1}
    assert [r.samples[0].text for r in ours] == greedy_reference(folder, PROMPTS, 12)
    # the config decides, whatever the architecture's name
    cfg = LlamaConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=2)
    cfg._attn_implementation = "sdpa"
    assert shared_prefix_blocker(cfg) is None
    cfg.attn_logit_softcapping = 50.0
    assert shared_prefix_blocker(cfg) == "attention logit softcapping"


def test_sliding_window_shorter_than_the_batch_decodes_expanded(model_dir, tmp_path):
    folder = tiny_variant(tmp_path / "swa", model_dir, "mistral", sliding_window=24)
    params = SamplingParams(temperature=0, max_new_tokens=16)
    short = ["code"]  # about 10 prompt tokens: 10 + 16 > 24 still, so both batches are expanded ...
    with HFBackend(folder, device="cpu", batch_size=4) as backend:
        assert backend.shared_prefix_off is None and backend.window == 24
        ours = backend.generate([Request(f"p{i}", chat(t), 1, 0) for i, t in enumerate(PROMPTS)], params)
        assert backend.decode_paths == {"shared": 0, "expanded": 1}
        assert [r.samples[0].text for r in ours] == greedy_reference(folder, PROMPTS, 16)
        backend.generate([Request("s", chat(short[0]), 1, 0)], SamplingParams(temperature=0, max_new_tokens=24 - len(backend.encode(chat(short[0])))))
        assert backend.decode_paths == {"shared": 1, "expanded": 1}  # ... unless prompt + budget fit the window
