"""What the pipeline agrees to load as a model: safetensors weights and the library's own code, unless the
config says otherwise (docs/design.md, "House rules").

Pickle weights (``pytorch_model.bin``, ``.pt``) run code when they are unpickled, and ``trust_remote_code`` runs
a model repository's own Python; a model folder downloaded from anywhere could carry either. Both are off
unless ``models.allow_pickle`` / ``models.trust_remote_code`` turn them on for a model the user trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


class UnsafeModelError(ValueError):
    """A model that can only be loaded by running code from its files, which the config does not allow."""


@dataclass(frozen=True)
class ModelTrust:
    allow_pickle: bool = False
    trust_remote_code: bool = False

    @classmethod
    def of(cls, models) -> "ModelTrust":
        """From the config's ``models`` section (or anything with the two fields)."""
        return cls(bool(models.allow_pickle), bool(models.trust_remote_code))

    def as_dict(self) -> dict:
        return {"allow_pickle": self.allow_pickle, "trust_remote_code": self.trust_remote_code}


def pickle_only_weights(folder: str | Path) -> list[str]:
    """The pickle weight files of a local model folder that has no safetensors weights (else [])."""
    d = Path(folder)
    if not d.is_dir() or any(d.glob("*.safetensors")):
        return []
    return sorted(p.name for pattern in PICKLE_WEIGHTS for p in d.glob(pattern) if p.is_file() and p.name != "training_args.bin")


def check_model(path: str | Path, trust: ModelTrust) -> None:
    """Refuse a local model folder whose weights are pickle only, unless pickle is allowed; the message says how."""
    found = [] if trust.allow_pickle else pickle_only_weights(path)
    if found:
        raise UnsafeModelError(
            f"model {path} has only pickle weights ({', '.join(found)}), which can run code when loaded: convert them "
            "to safetensors (model.save_pretrained(folder) in an environment you trust), or set models.allow_pickle: "
            "true in the config (grm score / serve: --allow-pickle) if you trust this model"
        )


def pretrained_kwargs(path: str | Path, trust: ModelTrust) -> dict:
    """Keyword arguments for transformers' ``from_pretrained`` (after ``check_model``): safetensors only unless
    pickle is allowed, and never a repository's own code unless trusted."""
    check_model(path, trust)
    return {"use_safetensors": None if trust.allow_pickle else True, "trust_remote_code": trust.trust_remote_code}


def tokenizer_kwargs(trust: ModelTrust) -> dict:
    return {"trust_remote_code": trust.trust_remote_code}


def vllm_load_args(trust: ModelTrust) -> dict:
    """vLLM engine arguments (``LLM(...)`` / ``vllm serve``) with the same rule."""
    args: dict = {} if trust.allow_pickle else {"load_format": "safetensors"}
    if trust.trust_remote_code:
        args["trust_remote_code"] = True
    return args
