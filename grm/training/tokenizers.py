"""Tokenizer loading for training: a pad token and a chat template are guaranteed; only the library's code runs
unless the job trusts the model's own (grm.model_loading)."""

from __future__ import annotations

from grm.model_loading import ModelTrust, tokenizer_kwargs

# ChatML with {% generation %} markers, for base models that ship without a chat template.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ message['content'] }}<|im_end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def job_trust(job: dict) -> ModelTrust:
    """What a trainer child may load: the job's ``trust`` (models.allow_pickle / trust_remote_code)."""
    return ModelTrust(**job.get("trust", {}))


def load_tokenizer(path: str, trust: ModelTrust = ModelTrust()):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, **tokenizer_kwargs(trust))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # batching needs a pad id; the attention mask hides it
    if not tok.chat_template:
        tok.chat_template = CHATML  # saved with the trained model, so generation uses the same format
    return tok
