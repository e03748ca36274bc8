"""Bad input, counted (tests/input_fuzz.py): the parser, every format adapter, the file readers and config files
fuzzed with a few hundred inputs each; no exception escapes and every row is imported, quarantined with a
reason, or counted as a duplicate. The long campaign (100,000+ inputs per target) is bench/input_fuzz.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grm.formats.importer import import_records, import_source
from grm.formats.readers import Record
from grm.formats.registry import FORMATS
from tests import input_fuzz
from tests.format_seeds import SEEDS

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

ROOT = Path(__file__).resolve().parents[1]


def test_every_format_has_a_seed_row_that_imports():
    missing = sorted(set(FORMATS) - set(SEEDS))
    assert not missing, f"formats without a seed row in tests/format_seeds.py (add one row that imports): {missing}"
    for name, (path, group, row) in SEEDS.items():
        result = import_records([Record(path, f"{path}:1", json.dumps(row), row, group=group)], "seed", FORMATS[name],
                                FORMATS[name].default_split, max_chars=200_000)
        assert result.items and not result.quarantine, (name, result.quarantine)


def test_the_parser_never_raises_and_reports_a_known_status():
    counts = input_fuzz.parser_campaign(400, rng_seed=19)
    assert sum(counts.values()) == 400 and len(counts) >= 3


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_row_of_a_fuzzed_format_is_imported_quarantined_or_a_duplicate(name):
    counts = input_fuzz.format_campaign(name, examples=20, rng_seed=19)
    assert counts["inputs"] >= 20
    assert counts["imported"] and counts["quarantined"]  # the mutants reach both outcomes


def test_fuzzed_files_are_read_row_by_row_or_refused_naming_the_file():
    counts = input_fuzz.reader_campaign(120, rng_seed=19)
    assert counts["quarantined"] and counts["unreadable files"]


def test_json_nested_past_the_recursion_limit_is_a_quarantined_row(tmp_path):
    f = tmp_path / "deep.jsonl"
    f.write_text("[" * 5000 + "]" * 5000 + "\n" + json.dumps({"query": "q", "chosen": "a", "rejected": "b"}) + "\n")
    r = import_source("deep", "generic", [str(f)], "train")
    assert (r.stats.read, r.stats.imported) == (2, 1)
    assert [q["reason"] for q in r.quarantine] == ["invalid_json: nested too deeply"]


def test_fuzzed_config_files_give_lines_naming_the_file_and_the_field():
    counts = input_fuzz.config_campaign(300, rng_seed=19)
    assert counts["invalid value"] and counts["invalid YAML"] and counts["not UTF-8"] and counts["valid"]


@pytest.mark.parametrize("text, line, n_errors", [
    ("judge:\n  k_max: many\n", "invalid config {f}: judge.k_max: Input should be a valid integer", 1),
    ("rl: [unclosed\n", "invalid YAML in config {f}, line 2, column 1: while parsing a flow sequence", 1),
    ("models:\n  dtype: float8\n  basee: x\n", "invalid config {f}: models.basee: unknown field (not allowed here)", 2),
    ("- a\n- b\n", "invalid config {f}: (top level): must be a mapping of sections, got list", 1),
])
def test_grm_run_with_a_bad_config_prints_one_line_per_error_and_exits_2(tmp_path, text, line, n_errors):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(f), "--store", str(tmp_path / "s")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("grm run: ") and all(str(f) in l for l in lines), proc.stderr
    assert any(l.removeprefix("grm run: ").startswith(line.format(f=f)) for l in lines), proc.stderr
    assert len(lines) == n_errors
