"""Cache keys of stages (docs/design.md, "Caching"): config section, input content hashes, code version, library versions.

Prefect's TASK_SOURCE policy hashes only the decorated function; a stage's behaviour lives in the modules it
imports. ``code_version`` therefore hashes the source of the stage module and of every project module it
imports, transitively, and of the child programs it runs (found statically, without importing them).
"""

from __future__ import annotations

import hashlib
import json
import re
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from grm.config import Config, EndpointConfig
from storage import ArtifactRef
from storage.versions import library_versions

PROJECT_PACKAGES = ("grm", "storage", "tasks")


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source file of a project module, found on disk (find_spec would import parent packages)."""
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


_FROM = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.M)
# Child programs (trainers, the vLLM worker and CLI) run as other processes, which no import shows: a quoted
# project module name ("grm.generation.vllm_cli") counts as importing it, and so does a stage's
# ``run_trainer(ctx, "<name>", ...)`` for grm.training.<name> (grm.training.launch runs it with ``python -m``).
_MODULE_NAME = re.compile(r"[\"']((?:grm|storage|tasks)(?:\.\w+)+)[\"']")
_TRAINER_CALL = re.compile(r"\brun_trainer\(\s*\w+\s*,\s*[\"'](\w+)[\"']")


def _imports(path: Path, module: str) -> set[str]:
    """Project modules imported by a source file (top level or inside functions). A regex, not ``ast``:
    ``ast.parse`` is not thread-safe in CPython 3.11 and stages start inside Prefect's worker threads."""
    text = path.read_text(encoding="utf-8")
    found: set[str] = set()
    for base, names in _FROM.findall(text):
        found.add(base)
        found.update(f"{base}.{n.split()[0]}" for n in names.strip("()").replace("\n", " ").split(",") if n.strip())
    for names in _IMPORT.findall(text):
        found.update(n.split()[0] for n in names.split(",") if n.strip())
    found.update(_MODULE_NAME.findall(text))
    found.update(f"grm.training.{t}" for t in _TRAINER_CALL.findall(text))
    return {m for m in found if m.split(".")[0] in PROJECT_PACKAGES}


def code_modules(module: str) -> dict[str, Path]:
    """``module`` and every project module it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(path, name) - seen.keys())
        parent = name.rpartition(".")[0]
        if parent and parent not in seen:
            todo.append(parent)  # importing a.b runs a/__init__.py
    return seen


@lru_cache(maxsize=None)
def code_version(module: str) -> str:
    """Hash of the source of ``code_modules(module)``."""
    seen = code_modules(module)
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + seen[name].read_bytes() + b"\0")
    return h.hexdigest()


def config_values(config: Config, paths: Iterable[str]) -> dict[str, Any]:
    """The values at dotted config paths (e.g. 'rft.train', 'seed')."""
    data = config.model_dump(mode="json")
    out = {}
    for path in paths:
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[path] = node
    return out


def stage_key(
    stage: str,
    config: Config,
    sections: Iterable[str],
    inputs: Mapping[str, ArtifactRef],
    code: str,
) -> tuple[str, str]:
    """(cache key, config hash) of one stage run: content only, never where the store is, so a moved or copied
    store keeps its cache (each store keeps its own results, so two stores never share one by mistake)."""
    config_hash = hashlib.sha256(json.dumps(config_values(config, sections), sort_keys=True).encode()).hexdigest()
    payload = {
        "stage": stage,
        "config": config_hash,
        "inputs": {k: v.content_hash for k, v in sorted(inputs.items())},
        "code": code,
        "libraries": library_versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(), config_hash


def file_fingerprint(path: str | Path) -> str:
    """Content hash of a source file or folder (data sources, general instruction data)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def model_fingerprint(path_or_id: str) -> str:
    """A cheap identity for an external model: file names, sizes and mtimes of a local folder (hashing a
    multi-GB checkpoint on every run would cost minutes), or the id itself for a hub model."""
    p = Path(path_or_id)
    if not p.exists():
        return hashlib.sha256(f"hub:{path_or_id}".encode()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        st = os.stat(f)
        h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def external_data(name: str, path: str) -> ArtifactRef:
    """A data file or folder outside the store (or an HF dataset id) as a stage input: its content hash (the
    id's, for a hub id) stands in for an artifact's."""
    fp = file_fingerprint(path) if Path(path).exists() else model_fingerprint(path)
    return ArtifactRef("external", name, path, fp)


def external_model(name: str, path: str) -> ArtifactRef:
    """A model folder outside the store (or a hub id) as a stage input, fingerprinted cheaply."""
    return ArtifactRef("external", name, path, model_fingerprint(path))


@dataclass(frozen=True)
class EndpointRef(ArtifactRef):
    """A model behind an OpenAI-compatible endpoint as a stage input: kind 'endpoint', path its base URL, and
    the endpoint's settings (never its key) for the sampler (tasks.sampling.backend_spec)."""

    endpoint: EndpointConfig | None = None


def endpoint_model(endpoint: EndpointConfig) -> EndpointRef:
    """An endpoint as a stage input. Its weights cannot be hashed: the URL and the served model's name stand in
    for its content, as a hub id does for a hub model (the key, and which variable holds it, do not count)."""
    ident = json.dumps([endpoint.base_url.rstrip("/"), endpoint.model])
    fingerprint = hashlib.sha256(f"endpoint:{ident}".encode()).hexdigest()
    return EndpointRef("endpoint", endpoint.model, endpoint.base_url, fingerprint, endpoint=endpoint)
