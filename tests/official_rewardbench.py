"""The official RewardBench scoring code (``rewardbench`` 0.1.4 on PyPI), loaded for parity tests.

``import rewardbench.utils`` fails here: the package ``__init__`` and ``rewardbench/models`` import model
classes our transformers no longer has. The scoring functions (``calculate_scores_per_section``,
``reroll_and_score_dataset``, ``sample_stats``, ``process_single_model``) and ``rewardbench/constants.py``
need none of them, so ``utils.py`` and ``constants.py`` are executed from the installed package folder under
a bare ``rewardbench`` package (no ``__init__`` run) and a stub ``rewardbench.models`` holding the one name
``utils.py`` imports (``REWARD_MODEL_CONFIG``, used only to load models). ``sys.modules`` is restored
afterwards, so nothing else sees the bare package. ``make install`` installs the package with ``--no-deps``
(plus ``fschat``, which ``utils.py`` imports) so the pinned environment is untouched.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import sys
import types

import pytest

PACKAGE = "rewardbench"
VERSION = "0.1.4"  # the release the parity tests are written against
INSTALL = f"pip install --no-deps {PACKAGE}=={VERSION} fschat==0.2.36"


@functools.cache
def official_rewardbench() -> tuple[types.ModuleType, types.ModuleType]:
    """(``rewardbench.utils``, ``rewardbench.constants``) of the installed release; skips the calling test
    when the package is not installed. Loaded once per test session."""
    return load_official_rewardbench()


def load_official_rewardbench() -> tuple[types.ModuleType, types.ModuleType]:
    """Load without the cache (the loader's own tests check that ``sys.modules`` comes back unchanged)."""
    folder = _package_folder()
    if folder is None:
        pytest.skip(f"{PACKAGE} is not installed ({INSTALL}; `make install` does it)")
    version = importlib.metadata.version(PACKAGE)
    if version != VERSION:
        raise RuntimeError(f"{PACKAGE} {version} is installed; the parity tests need {VERSION} ({INSTALL})")
    saved = {name: mod for name, mod in sys.modules.items() if _ours(name)}
    bare = types.ModuleType(PACKAGE)
    bare.__path__ = [folder]  # a package whose submodules are found in the installed folder; no __init__ runs
    bare.__version__ = version
    models = types.ModuleType(f"{PACKAGE}.models")
    models.REWARD_MODEL_CONFIG = {}  # utils.py imports it at the top; only its model loading reads it
    try:
        for name in saved:
            del sys.modules[name]
        sys.modules[PACKAGE] = bare
        sys.modules[models.__name__] = models
        try:
            constants = importlib.import_module(f"{PACKAGE}.constants")
            utils = importlib.import_module(f"{PACKAGE}.utils")
        except ImportError as e:
            raise RuntimeError(f"{PACKAGE}.utils cannot be imported ({e}); install it with: {INSTALL}") from e
    finally:
        for name in [n for n in sys.modules if _ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
    return utils, constants


def _package_folder() -> str | None:
    """The installed package's folder, found without importing it (its ``__init__`` would fail)."""
    loaded = sys.modules.get(PACKAGE)
    spec = getattr(loaded, "__spec__", None) if loaded is not None else importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")
