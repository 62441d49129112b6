"""The shipped default: a trained model's small release files, tracked in git, so that a fresh
clone tutors at once.

`models/release/<name>/` holds the Hugging Face model folder (safetensors, config, tokenizer),
one GGUF variant for a laptop without torch, the held-out split and its benchmark, and
`release.json`: the recipe, the data, tokenizer and model fingerprints, the commit it was
trained at, the weights' hash and the held-out accuracy. Every command that takes MODEL finds
it by the recipe's name while the recipe has no trained model of its own; `train` and
`pipeline` always write `models/<name>/`, never here. `tracetutor release NAME` (the one
deliberate way to replace it) copies a trained, exported and benchmarked run here.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

from tracetutor.files import atomic_path, sha256_files, weights_digest, write_json
from tracetutor.recipe import Recipe, load_recipe, models_dir

DEFAULT = "tiny-tutor"
MAX_BYTES = 20_000_000
"""What a release may weigh in git."""
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")
RECORDS = ("data/heldout.jsonl", "bench.json")


def release_dir(name: str) -> Path:
    """Where the release of recipe `name` lives: models/release/<name>/, in the models folder in
    use or, when that has none, in the repository this package runs from."""
    here = models_dir() / "release" / name
    if here.is_dir():
        return here
    repository = Path(__file__).resolve().parents[2] / "models" / "release" / name
    return repository if repository.is_dir() else here


def default_model() -> Path:
    """The shipped default's folder; FileNotFoundError saying how to make one if it is missing."""
    path = release_dir(DEFAULT)
    if not (path / "release.json").is_file():
        raise FileNotFoundError(f"no shipped default in {path}: train one with `tracetutor pipeline {DEFAULT}` "
                                f"and release it with `tracetutor release {DEFAULT}`")
    return path


def make_release(recipe: Recipe | str, variant: str = "gguf-q8_0", *, log=print) -> Path:
    """Copy recipe's trained model, its `variant` and its held-out benchmark into its release
    folder with their provenance; ValueError if anything is missing, stale or too large."""
    from tracetutor.pipeline import data_fingerprint, model_fingerprint, tokenizer_fingerprint
    from tracetutor.runtime.variants import check_fresh, variant_path

    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    src = recipe.dir
    metrics = _json(src / "train_metrics.json", f"train it first: tracetutor train {recipe.name}")
    if metrics.get("fingerprint") != model_fingerprint(recipe):
        raise ValueError(f"{src}: the trained model is not the one {recipe.path} describes now; "
                         f"retrain it: tracetutor train {recipe.name}")
    gguf = variant_path(src, variant)
    if not gguf.exists():
        raise ValueError(f"{gguf}: no {variant} variant; export it: tracetutor export {recipe.name} --to {variant}")
    check_fresh(src, variant, gguf)
    bench = _json(src / "bench.json", f"bench it first: tracetutor pipeline {recipe.name}")
    scores = bench.get("variants", {}).get(variant)
    if scores is None:
        raise ValueError(f"{src / 'bench.json'}: no held-out result for {variant}; run tracetutor pipeline {recipe.name}")
    files = [f for f in MODEL_FILES if (src / f).is_file()] + [f for f in RECORDS if (src / f).is_file()]
    size = sum((src / f).stat().st_size for f in files) + gguf.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"a release of {recipe.name} with {variant} would weigh {size / 1e6:.1f} MB, over "
                         f"{MAX_BYTES / 1e6:.0f} MB; choose a smaller variant with --variant")
    out = release_dir(recipe.name)
    if out.is_dir() and not (out / "release.json").is_file():
        raise ValueError(f"{out}: exists and is not a release; move it away first")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for f in files:
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / f, tmp / f)
        shutil.copy2(gguf, tmp / gguf.name)
        shutil.copy2(recipe.path, tmp / recipe.path.name)
        write_json(tmp / "release.json", {
            "name": recipe.name,
            "recipe": recipe.path.name,
            "recipe_sha256": sha256_files([recipe.path]),
            "fingerprints": {"data": data_fingerprint(recipe), "tokenizer": tokenizer_fingerprint(recipe),
                             "model": model_fingerprint(recipe)},
            "weights_sha256": weights_digest(src),
            "commit": _commit(),
            "released": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "variant": variant,
            "train": {k: metrics.get(k) for k in ("parameters", "steps", "tokens", "train_seconds", "tokens_per_s",
                                                 "precision", "final_loss")},
            "heldout": {v: {k: s.get(k) for k in ("n", "accuracy", "checked_accuracy")}
                        for v, s in bench.get("variants", {}).items() if v in ("torch-fp32", variant)},
            "files": {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_files([p])}
                      for p in sorted(tmp.rglob("*")) if p.is_file()},
        })
    log(f"released {recipe.name} ({size / 1e6:.1f} MB) in {out}; to ship it: git add -f {out}")
    return out


def _json(path: Path, advice: str) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: missing; {advice}")
    return json.loads(path.read_text())


def _commit() -> str | None:
    """The commit the code stands at, marked `-dirty` when the tree has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
