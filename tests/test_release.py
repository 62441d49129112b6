"""The shipped default: a release is made from a trained, exported and benched run, found by
the recipe's name while the recipe has no run of its own, and never written by training."""

import json
import shutil

import pytest

pytest.importorskip("llama_cpp")


@pytest.fixture
def released(trained_micro, tmp_path, monkeypatch):
    from tracetutor.pipeline import bench_heldout, export_variants
    from tracetutor.recipe import load_recipe
    from tracetutor.pipeline import release as make_release

    recipe, _ = trained_micro
    root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, root, ignore=shutil.ignore_patterns("checkpoints", "onnx-*", "*.gguf"))
    monkeypatch.setenv("TRACETUTOR_MODELS", str(root))
    run = load_recipe(root / "micro.toml")
    export_variants(run, ["gguf-q8_0"], log=lambda m: None)
    bench_heldout(run, ["torch-fp32", "gguf-q8_0"])
    return make_release(run, "gguf-q8_0", log=lambda m: None), run


def test_a_release_holds_the_model_one_gguf_and_their_provenance(released):
    from tracetutor.files import sha256_files, weights_digest

    out, run = released
    meta = json.loads((out / "release.json").read_text())
    assert out == run.dir.parent / "release" / "micro"
    assert meta["weights_sha256"] == weights_digest(run.dir) == weights_digest(out)
    assert meta["fingerprints"]["model"] == json.loads((run.dir / "train_metrics.json").read_text())["fingerprint"]
    assert meta["variant"] == "gguf-q8_0" and meta["heldout"]["gguf-q8_0"]["n"] > 0
    assert meta["heldout"]["gguf-q8_0"]["checked_accuracy"] is not None
    for name, f in meta["files"].items():  # every file is listed with its hash
        assert sha256_files([out / name]) == f["sha256"]
    assert {"model.safetensors", "tokenizer.json", "data/heldout.jsonl", "bench.json", "micro.toml"} <= set(meta["files"])
    assert any(name.endswith("-q8_0.gguf") for name in meta["files"])


def test_the_release_is_found_by_name_until_the_recipe_has_its_own_run(released):
    from tracetutor.cli import main
    from tracetutor.recipe import load_recipe, resolve_model
    from tracetutor.runtime import load

    out, run = released
    shutil.rmtree(run.dir)  # a fresh clone: the recipe and its release, no run
    assert resolve_model("micro")[0] == out
    assert load("micro", "gguf-q8_0").ask("What is 2 + 3?").stats["variant"] == "gguf-q8_0"
    assert main(["bench", "micro", "--variants", "gguf-q8_0", "--limit", "2"]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    # training writes its own run, never the release
    from tracetutor.pipeline import prepare_data, prepare_model, prepare_tokenizer

    recipe = load_recipe("micro")
    prepare_data(recipe)
    prepare_tokenizer(recipe)
    prepare_model(recipe)
    assert (run.dir / "model.safetensors").is_file() and resolve_model("micro")[0] == run.dir
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_release_refuses_a_stale_run(released):
    from tracetutor.pipeline import release as make_release

    out, run = released
    toml = run.path
    toml.write_text(toml.read_text().replace("learning_rate = 3e-3", "learning_rate = 1e-3"))
    from tracetutor.recipe import load_recipe

    with pytest.raises(ValueError, match="not the one .* describes now"):
        make_release(load_recipe(toml), "gguf-q8_0", log=lambda m: None)


def test_export_checks_a_releases_variants_and_writes_nothing_there(released, capsys):
    from tracetutor.cli import main

    out, run = released
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["export", str(out), "--to", "gguf-q8_0"]) == 0  # measured again, not rewritten
    assert main(["export", str(out), "--to", "gguf-q4_k_m"]) == 2
    assert "is a shipped release and export writes nothing there" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
