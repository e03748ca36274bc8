"""`grm models import` without the 98 MB model: a Hugging Face folder is published and reloads; what cannot be
imported (not GGUF, truncated, an unsupported architecture, no `gguf` package, no such package) gets one line
naming the file and the problem, exit 2, and nothing in the store. The real GGUF: tests/test_real_model.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flows.cli import main
from storage import Store


def _gguf(path: Path, arch: str) -> Path:
    """A small, well-formed GGUF file: header, metadata and one float32 tensor."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.ones((64, 16), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _refused(capsys, store: Path, *args: str) -> str:
    """Run the import, check it failed cleanly and published nothing; its one line on stderr."""
    rc = main(["models", "import", *args, "--name", "m", "--store", str(store), "--wait", "0"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert Store(store).newest("models", "m") is None
    assert not any((store / ".tmp").glob("*")) if (store / ".tmp").exists() else True  # no half-made model left
    return err


def test_a_file_that_is_not_gguf_is_named(tmp_path, capsys):
    bad = tmp_path / "notes.gguf"
    bad.write_text("just some text\n")
    err = _refused(capsys, tmp_path / "store", str(bad))
    assert str(bad) in err and "not a GGUF file" in err


def test_a_truncated_gguf_file_is_named(tmp_path, capsys):
    whole = _gguf(tmp_path / "whole.gguf", "llama").read_bytes()
    for cut, name in ((len(whole) - 100, "cut_in_data.gguf"), (40, "cut_in_header.gguf")):
        f = tmp_path / name
        f.write_bytes(whole[:cut])
        err = _refused(capsys, tmp_path / "store", str(f))
        assert str(f) in err and "truncated" in err


def test_an_unsupported_architecture_is_named(tmp_path, capsys):
    f = _gguf(tmp_path / "rwkv.gguf", "rwkv6")
    err = _refused(capsys, tmp_path / "store", str(f))
    assert str(f) in err and "architecture 'rwkv6' is not supported" in err and "llama" in err


def test_a_missing_gguf_package_is_named(tmp_path, capsys, monkeypatch):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now fails as when it is not installed
    err = _refused(capsys, tmp_path / "store", str(f))
    assert str(f) in err and "'gguf' package" in err and "pip install gguf==0.19.0" in err


def test_other_sources_and_names_that_cannot_be_imported(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    err = _refused(capsys, tmp_path / "store", str(tmp_path / "folder"))
    assert "not a Hugging Face model folder (no config.json)" in err
    err = _refused(capsys, tmp_path / "store", str(tmp_path / "nowhere.gguf"))
    assert "nowhere.gguf: no such file or folder" in err
    err = _refused(capsys, tmp_path / "store", "package:no_such_package_here/model.gguf")
    assert "package 'no_such_package_here' is not installed" in err
    rc = main(["models", "import", str(tmp_path / "folder"), "--name", "grm", "--store", str(tmp_path / "store")])
    assert rc == 2 and "taken by the pipeline's own models" in capsys.readouterr().err


def test_a_hugging_face_folder_is_published_reloads_and_is_found_again(tmp_path, capsys, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = tmp_path / "store"
    assert main(["models", "import", str(tiny_model_dir), "--name", "tiny", "--store", str(store)]) == 0
    ref = Store(store).require("models", "tiny")
    extra = json.loads((Path(ref.path) / "manifest.json").read_text())["extra"]
    assert extra["source"] == str(Path(tiny_model_dir).resolve()) and len(extra["source_sha256"]) == 64
    assert extra["import"]["max_logit_diff"] == 0.0 and extra["import"]["versions"]["transformers"]
    assert (Path(ref.path) / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(ref.path)
    assert tok.chat_template and AutoModelForCausalLM.from_pretrained(ref.path).num_parameters() == extra["import"]["parameters"]
    capsys.readouterr()
    assert main(["models", "import", str(tiny_model_dir), "--name", "tiny", "--store", str(store)]) == 0
    assert "already imported" in capsys.readouterr().out
    assert len(Store(store).list("models", "tiny")) == 1


def test_a_config_imports_its_model_in_a_stage_and_names_it_as_base(tmp_path, tiny_model_dir):
    """import_model runs first when configured; models.base naming the store model binds models/<name> (its content
    hash in the cache key); before the import the binding fails naming the stage to run."""
    from grm.config import parse_config
    from grm.models_import import ModelImportError
    from tasks.runner import MissingInput, prepare, run_stage
    from tasks.stages import enabled_stages, get_stage

    store = Store(tmp_path / "store")
    store.write_table("items", [{"item_id": "a", "source": "s", "format": "f", "split": "eval", "subset": "x",
                                 "conversation": [{"role": "user", "content": "q"}], "responses": ["r1", "r2"],
                                 "label_kind": "best", "best": 0}])
    cfg = parse_config({"models": {"base": "tiny"}, "import_model": {"name": "tiny", "path": str(tiny_model_dir)},
                        "judge": {"models": ["base"], "voting_models": ["base"], "meta_scores": False}})
    assert [s.name for s in enabled_stages(cfg)][0] == "import_model"
    assert "import_model" not in [s.name for s in enabled_stages(parse_config({}))]
    with pytest.raises(ValueError, match="import_model.name 'grm' is taken by the pipeline's own models"):
        enabled_stages(parse_config({"import_model": {"name": "grm", "path": str(tiny_model_dir)}}))
    with pytest.raises(MissingInput, match="needs model 'tiny'.*run stage 'import_model' first"):
        prepare(get_stage("judge"), cfg, store, {})

    out = run_stage("import_model", cfg, store)
    model = store.require("models", "tiny")
    record = json.loads((Path(out.artifacts["model_import"].path) / "import.json").read_text())
    assert record["name"] == "tiny" and record["reused"] is False and record["model_content_hash"] == model.content_hash
    judge = prepare(get_stage("judge"), cfg, store, {})
    assert judge.inputs["models"]["base"].path == model.path and judge.inputs["voting"]["base"] == model

    again = run_stage("import_model", cfg, store)  # the same bytes under the same name: found, not converted
    assert json.loads((Path(again.artifacts["model_import"].path) / "import.json").read_text())["reused"] is True
    assert store.list("models", "tiny") == [model]
    with pytest.raises(ModelImportError, match="import_model.path package:nope_pkg/x.gguf: the Python package 'nope_pkg'"):
        prepare(get_stage("import_model"), parse_config({"import_model": {"name": "x", "path": "package:nope_pkg/x.gguf"}}),
                store, {})
