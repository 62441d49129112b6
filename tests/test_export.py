"""`tracetutor export` on the micro model: provenance, staleness, the parity gate, a quiet CLI.

Every variant records weights_digest of the weights it came from; a retrained model's export
rewrites the full-precision files its quantized variants are made from; the runtime's
check_fresh refuses a variant of other weights or of no recorded weights, and a damaged
ONNX file; a renamed folder keeps its GGUF variants.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tracetutor.files import sha256_files, weights_digest
from tracetutor.runtime.variants import variant_path, variants_on_disk

VARIANTS = ["gguf-f16", "gguf-q8_0", "onnx-fp32", "onnx-int8"]


# --- finding variants by name (no model needed) ------------------------------------------------

def test_gguf_variants_are_found_by_their_type_whatever_the_prefix(tmp_path):
    d = tmp_path / "renamed"
    d.mkdir()
    for name in ("tiny-tutor-q4_k_m.gguf", "micro-f16.gguf", "renamed-q8_0.gguf", "noprefix.gguf", "-f32.gguf"):
        (d / name).write_bytes(b"")
    assert variants_on_disk(d) == ["gguf-f16", "gguf-q4_k_m", "gguf-q8_0"]
    assert variant_path(d, "gguf-q4_k_m") == d / "tiny-tutor-q4_k_m.gguf"
    assert variant_path(d, "gguf-f16") == d / "micro-f16.gguf"
    assert variant_path(d, "gguf-q5_k_m") == d / "renamed-q5_k_m.gguf"  # a new file: <folder>-<type>.gguf
    (d / "renamed-f16.gguf").write_bytes(b"")  # the folder's own name wins over an old one
    assert variant_path(d, "gguf-f16") == d / "renamed-f16.gguf"


# --- the micro model exported ------------------------------------------------------------------

def needs_exporters():
    for name in ("llama_cpp", "gguf", "onnxruntime", "optimum.exporters.onnx"):
        pytest.importorskip(name)


@pytest.fixture(scope="module")
def exported(trained_micro, tmp_path_factory):
    needs_exporters()
    from tracetutor.export.build import export_model

    recipe, _ = trained_micro
    model_dir = tmp_path_factory.mktemp("export") / "micro"
    shutil.copytree(recipe.dir, model_dir, ignore=shutil.ignore_patterns("checkpoints"))
    report = export_model(model_dir, VARIANTS, n_prompts=6, log=lambda m: None)
    return model_dir, report


@pytest.fixture
def copy(exported, tmp_path):
    """A copy of the exported folder that a test may change."""
    model_dir, _ = exported
    return shutil.copytree(model_dir, tmp_path / "micro")


def gguf_source(path):
    import gguf

    field = gguf.GGUFReader(path).get_field("tracetutor.source_sha256")
    return field.contents() if field is not None else None


def onnx_meta(folder):
    import json

    return json.loads((folder / "export_meta.json").read_text())


def retrain(model_dir, seed=1):
    """Other weights in place of the model's, as a retrain with another seed leaves them."""
    import torch
    from safetensors.torch import load_file, save_file

    file = model_dir / "model.safetensors"
    weights = load_file(file)
    gen = torch.Generator().manual_seed(seed)
    save_file({k: v + 0.05 * v.std() * torch.randn(v.shape, generator=gen) if v.ndim == 2 else v
               for k, v in weights.items()}, file, metadata={"format": "pt"})


def test_every_variant_records_the_weights_it_came_from(exported):
    model_dir, report = exported
    digest = weights_digest(model_dir)
    assert digest.startswith("sha256:")
    for variant in ("gguf-f16", "gguf-q8_0"):
        assert gguf_source(variant_path(model_dir, variant)) == digest, variant
    for variant in ("onnx-fp32", "onnx-int8"):
        folder = model_dir / variant
        meta = onnx_meta(folder)
        assert meta["source_sha256"] == digest, variant
        assert meta["model_sha256"] == sha256_files(sorted(folder.glob("model.onnx*"))), variant
    assert all(report["variants"][v]["ok"] for v in VARIANTS), {v: e["logits"] for v, e in report["variants"].items()}


def test_a_retrained_model_quantizes_from_its_new_weights(copy):
    """The bug: gguf-q8_0 was quantized from the old f16 file, onnx-int8 from the old fp32
    folder, and passed parity on tokenizer parity alone."""
    from tracetutor.export.build import export_model

    old = weights_digest(copy)
    retrain(copy)
    new = weights_digest(copy)
    assert new != old
    report = export_model(copy, ["gguf-q8_0", "onnx-int8"], n_prompts=6, log=lambda m: None)
    for variant in ("gguf-f16", "gguf-q8_0"):
        assert gguf_source(variant_path(copy, variant)) == new, variant
    for variant in ("onnx-fp32", "onnx-int8"):
        assert onnx_meta(copy / variant)["source_sha256"] == new, variant
    for variant in ("gguf-q8_0", "onnx-int8"):
        entry = report["variants"][variant]
        assert entry["ok"] and entry["logits"]["mean_kl"] < 1e-3, entry["logits"]
    # the full-precision files were rewritten, so their earlier findings are gone from the report
    assert set(report["variants"]) == {"gguf-q8_0", "onnx-int8"}


def test_a_variant_of_other_weights_is_refused_with_the_command_that_fixes_it(copy):
    from tracetutor.runtime.variants import StaleVariantError, check_fresh

    for variant in ["torch-fp32", *VARIANTS]:
        check_fresh(copy, variant, variant_path(copy, variant))  # fresh: no error
    retrain(copy)
    check_fresh(copy, "torch-fp32", copy)
    for variant in VARIANTS:
        with pytest.raises(StaleVariantError) as e:
            check_fresh(copy, variant, variant_path(copy, variant))
        message = str(e.value)
        assert "\n" not in message and isinstance(e.value, ValueError)
        assert message.startswith(variant) and message.endswith(
            f"was exported from other weights than {copy} holds now; "
            f"re-export it: tracetutor export {copy} --to {variant}"), message


def test_a_variant_without_recorded_weights_is_refused(copy, monkeypatch):
    """As an older version wrote them: a GGUF without the key, an ONNX meta with the old
    per-file dict."""
    from tracetutor.export.gguf import write_gguf
    from tracetutor.runtime.variants import StaleVariantError, check_fresh

    monkeypatch.setattr("tracetutor.export.gguf.GGUF_SOURCE_KEY", "tracetutor.something_else")
    f16 = variant_path(copy, "gguf-f16")
    write_gguf(copy, f16)
    assert gguf_source(f16) is None
    meta_file = copy / "onnx-int8" / "export_meta.json"
    meta = onnx_meta(copy / "onnx-int8")
    meta["source_sha256"] = {"model.safetensors": weights_digest(copy).removeprefix("sha256:")}
    meta_file.write_text(__import__("json").dumps(meta))
    for variant, path in (("gguf-f16", f16), ("onnx-int8", copy / "onnx-int8")):
        with pytest.raises(StaleVariantError, match=f"records no provenance.*re-export it: tracetutor export "
                                                    f"{re.escape(str(copy))} --to {variant}$"):
            check_fresh(copy, variant, path)


def test_a_copy_with_only_the_variants_cannot_be_checked_and_is_allowed(copy, tmp_path):
    from tracetutor.runtime.variants import check_fresh

    retrain(copy)  # stale where the weights are; the laptop's copy has none to compare with
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    for f in copy.glob("*.gguf"):
        shutil.copy(f, laptop)
    shutil.copytree(copy / "onnx-int8", laptop / "onnx-int8")
    for variant in ("gguf-f16", "gguf-q8_0", "onnx-int8"):
        check_fresh(laptop, variant, variant_path(laptop, variant))


def test_the_weights_digest_is_cached_by_size_and_mtime(copy, monkeypatch):
    from tracetutor.runtime import variants

    calls = []
    monkeypatch.setattr(variants, "weights_digest", lambda d: calls.append(d) or weights_digest(d))
    monkeypatch.setattr(variants, "_DIGESTS", {})
    for _ in range(3):
        variants.check_fresh(copy, "gguf-q8_0", variant_path(copy, "gguf-q8_0"))
    assert len(calls) == 1
    st = (copy / "model.safetensors").stat()
    os.utime(copy / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    variants.check_fresh(copy, "gguf-q8_0", variant_path(copy, "gguf-q8_0"))
    assert len(calls) == 2


def test_a_damaged_onnx_model_is_caught_by_its_recorded_hash(copy):
    """4 KB of random bytes over the middle of model.onnx: the protobuf walk and onnxruntime
    may load it, the recorded model_sha256 does not match."""
    from tracetutor.runtime.variants import check_fresh

    model = copy / "onnx-int8" / "model.onnx"
    data = bytearray(model.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    model.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(model))}: damaged.*--to onnx-int8"):
        check_fresh(copy, "onnx-int8", copy / "onnx-int8")


def test_a_renamed_folder_keeps_its_gguf_variants(exported, tmp_path):
    from tracetutor.runtime import load
    from tracetutor.runtime.variants import check_fresh

    model_dir, _ = exported
    renamed = shutil.copytree(model_dir, tmp_path / "my-tutor")
    assert variants_on_disk(renamed) == ["torch-fp32", "onnx-fp32", "onnx-int8", "gguf-f16", "gguf-q8_0"]
    path = variant_path(renamed, "gguf-q8_0")
    assert path == renamed / "micro-q8_0.gguf"
    check_fresh(renamed, "gguf-q8_0", path)
    ids = load(renamed, "gguf-q8_0").backend.encode_prompt("What is 3 + 4?")
    assert ids == load(renamed).backend.encode_prompt("What is 3 + 4?")


# --- the command -------------------------------------------------------------------------------

def test_export_exits_1_when_a_variant_fails_parity(copy, monkeypatch, capsys):
    from tracetutor.cli import main
    from tracetutor.export import build

    monkeypatch.setitem(build.BOUNDS, "gguf-q8_0", (0.0, 1.01))  # no variant can agree more than always
    assert main(["export", str(copy), "--to", "gguf-q8_0"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"^gguf-q8_0 .* FAILED$", out, re.M) and "parity failed for gguf-q8_0" in err


def test_export_exits_0_and_prints_only_its_own_lines(trained_micro, tmp_path, capfd):
    """No library warnings (transformers, optimum, torch.onnx, onnxruntime) in a user's
    terminal: only the progress lines, the table and where the report is."""
    needs_exporters()
    recipe, _ = trained_micro
    model_dir = shutil.copytree(recipe.dir, tmp_path / "micro", ignore=shutil.ignore_patterns("checkpoints"))
    run = subprocess.run([sys.executable, "-m", "tracetutor.cli", "export", str(model_dir), "--to", "onnx-int8"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    out, err = capfd.readouterr()
    assert run.returncode == 0, out + err
    lines = (out + err).splitlines()
    assert not [line for line in lines if re.search("warn", line, re.I)], lines
    own = re.compile(r"^(export onnx-int8 \.\.\.|onnx-int8 .* ok|report: .*export_report\.json)$")
    assert [line for line in lines if not own.match(line)] == []


@pytest.mark.parametrize("target, message", [
    ("gguf-q9_9", "unknown GGUF type 'q9_9' in gguf-q9_9; llama.cpp writes"),
    ("onnx-int3", "unknown variant 'onnx-int3'"),
    ("torch-fp32", "torch-fp32 is the model itself"),
])
def test_an_unknown_target_is_one_line_before_any_work(tmp_path, target, message, capsys):
    from tracetutor.cli import main

    model_dir = tmp_path / "m"
    model_dir.mkdir()  # no model at all: the target is refused before anything is loaded
    assert main(["export", str(model_dir), "--to", f"gguf-q8_0,{target}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
