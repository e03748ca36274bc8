"""A corpus of deliberately broken rows imports without a crash, and every row is accounted for."""

from __future__ import annotations

import gzip
import json

import pytest

from flows.cli import main
from grm.formats import SourceReadError
from grm.formats.importer import import_source
from storage import Store

GOOD = {"query": "What is 2+2?", "chosen": "4", "rejected": "5"}

BROKEN_LINES: list[tuple[bytes, str | None]] = [  # (line, expected reason code; None = imported)
    (json.dumps(GOOD).encode(), None),
    (b'{"query": "What is 3+3?", "chosen": "6", "rej', "invalid_json"),  # truncated line
    (json.dumps({"query": 5, "chosen": "a", "rejected": "b"}).encode(), "non_text"),
    (json.dumps({"query": "q", "responses": "ab", "best": 0}).encode(), "wrong_type"),
    (json.dumps({"query": "q", "responses": ["a", "b"], "best": "first"}).encode(), "wrong_type"),
    (json.dumps({"query": "q", "responses": ["a", "b"]}).encode(), "missing_field"),  # no label at all
    (json.dumps({"query": "q", "response": "r"}).encode(), "missing_field"),
    (json.dumps({"query": "q", "chosen": "x" * 5000, "rejected": "y"}).encode(), "too_long"),
    ('{"query": "caf\u00e9?", "chosen": "a", "rejected": "b"}'.encode("latin-1"), "invalid_utf8"),
    (b"[1, 2, 3]", "not_an_object"),
    (json.dumps({"query": "q", "chosen": "   ", "rejected": "b"}).encode(), "empty_text"),
    (json.dumps({"query": "q", "responses": ["a", "b"], "best": 2}).encode(), "best_out_of_range"),
    (json.dumps({"conversation": [{"role": "user", "content": {"text": "q"}}], "chosen": "a", "rejected": "b"}).encode(),
     "non_text"),
    (json.dumps({"conversation": [{"role": "assistant", "content": "hi"}], "chosen": "a", "rejected": "b"}).encode(),
     "bad_conversation"),
    (json.dumps({"query": "q", "response": "r", "label": 7}).encode(), "bad_label"),
    (json.dumps(GOOD).encode(), "duplicate"),
]


def write_corpus(path):
    path.write_bytes(b"\n".join(line for line, _ in BROKEN_LINES[:5]) + b"\n\n"  # a blank line is not a row
                     + b"\n".join(line for line, _ in BROKEN_LINES[5:]))  # and no final newline
    return path


def test_broken_rows_are_quarantined_with_reasons_and_nothing_is_lost(tmp_path):
    path = write_corpus(tmp_path / "broken.jsonl")
    r = import_source("mine", "generic", [str(path)], max_chars=1000)
    s = r.stats
    assert s.read == len(BROKEN_LINES)
    assert s.imported + s.quarantined_total + s.duplicates == s.read
    assert (s.imported, s.duplicates) == (1, 1)
    expected = [code for _, code in BROKEN_LINES if code not in (None, "duplicate")]
    assert [q["reason"].split(":")[0] for q in r.quarantine] == expected
    by_ref = {q["row_ref"]: q for q in r.quarantine}
    assert by_ref[f"{path}:2"]["raw"].startswith('{"query": "What is 3+3?"')  # line numbers count the blank line
    utf8 = next(q for q in r.quarantine if q["reason"].startswith("invalid_utf8"))
    assert "caf\\xe9" in utf8["raw"]
    assert "5" in next(q for q in r.quarantine if q["reason"].startswith("too_long"))["reason"]


def test_broken_rows_in_a_benchmark_format(tmp_path):
    rows = [{"input": "q", "output_1": "a", "output_2": "b", "label": "2"},
            {"input": "q", "output_1": "a", "output_2": "b", "label": 3},
            {"input": "q", "output_1": "a", "output_2": "b"},
            {"input": "q", "output_1": ["a"], "output_2": "b", "label": 1},
            {"input": "q", "output_1": "same", "output_2": "same", "label": 1},
            "a string row"]
    path = tmp_path / "Dataset" / "LLMBar" / "Natural" / "dataset.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rows))
    r = import_source("llmbar", "llmbar", [str(tmp_path / "Dataset")])
    assert [i["subset"] for i in r.items] == ["LLMBar/Natural"] and r.items[0]["best"] == 1
    assert [q["reason"] for q in r.quarantine] == [
        "bad_label: label=3 is not one of 1, 2",
        "missing_field: label",
        "non_text: output_1 is list, not text",
        "tie: the best response's text equals response 1",
        "not_an_object: a str",
    ]
    assert r.quarantine[0]["row_ref"] == "{}#1".format(tmp_path / "Dataset" / "LLMBar" / "Natural" / "dataset.json")


def test_a_file_that_cannot_be_read_at_all_names_the_file(tmp_path):
    truncated = tmp_path / "rows.json"
    truncated.write_text('[{"input": "q", "output_1": "a", "output_2": "b", "label": 1}, {"inp')
    with pytest.raises(SourceReadError, match="rows.json: not valid JSON"):
        import_source("x", "llmbar", [str(truncated)])
    corrupt = tmp_path / "rows.jsonl.gz"
    whole = gzip.compress("".join(json.dumps({"n": i}) + "\n" for i in range(2000)).encode())
    corrupt.write_bytes(whole[: len(whole) // 2])  # cut short in the middle
    with pytest.raises(SourceReadError, match="rows.jsonl.gz: corrupt gzip"):
        import_source("x", "generic", [str(corrupt)])
    not_parquet = tmp_path / "rows.parquet"
    not_parquet.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceReadError, match="rows.parquet: cannot read Parquet"):
        import_source("x", "generic", [str(not_parquet)])
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42")
    with pytest.raises(SourceReadError, match="scalar.json: the top level is neither"):
        import_source("x", "generic", [str(scalar)])


def test_cli_import_prints_the_accounting(tmp_path, capsys):
    path = write_corpus(tmp_path / "broken.jsonl")
    store = tmp_path / "store"
    assert main(["data", "import", "--format", "generic", "--name", "mine", "--split", "eval", "--max-chars", "1000",
                 "--store", str(store), str(path)]) == 0
    out = capsys.readouterr().out
    assert f"read         {len(BROKEN_LINES)}" in out and "imported     1" in out
    assert "quarantined  14" in out and "non_text" in out and "invalid_json" in out and "duplicates   1" in out
    from grm.config import parse_config
    from tasks.runner import run_stage

    s = Store(store)
    run_stage("curate", parse_config({}), s)  # curate imports the registered source, with its --max-chars
    assert len(s.read_rows(s.table("quarantine"))) == 14 and len(s.read_rows(s.table("items"))) == 1
    assert main(["data", "import", "--format", "llmbar", "--store", str(store), str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
