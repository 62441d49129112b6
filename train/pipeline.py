"""A recipe's training stages, each skipped when its output is already on disk and was made
from the same inputs: data (train/held-out JSONL) → tokenizer → model.

Each stage records a fingerprint of what it was built from (the recipe sections it reads and
the fingerprint of the stage before it), so editing a recipe redoes exactly the stages the
edit affects, and a stale tokenizer or model is never reused by accident.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from tracetutor.recipe import Recipe, RecipeError
from tracetutor.trace import load_traces, render_completion, save_traces


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def data_fingerprint(recipe: Recipe) -> str:
    from .synth import VERSION

    return _fingerprint([asdict(recipe.data), VERSION])


def tokenizer_fingerprint(recipe: Recipe) -> str:
    return _fingerprint([data_fingerprint(recipe), asdict(recipe.tokenizer)])


def model_fingerprint(recipe: Recipe) -> str:
    train = asdict(recipe.train)
    train.pop("save_every", None)  # how often to checkpoint does not change the model
    return _fingerprint([tokenizer_fingerprint(recipe), asdict(recipe.model), train])


def _recorded(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def prepare_data(recipe: Recipe, force: bool = False) -> Path:
    """Generate the recipe's synthetic train and held-out splits into models/<name>/data/."""
    from .synth import make_splits

    data_dir = recipe.dir / "data"
    meta_path = data_dir / "meta.json"
    key = data_fingerprint(recipe)
    if not force and _recorded(meta_path) == key:
        return data_dir
    d = recipe.data
    train, heldout = make_splits(d.n_train, d.n_heldout, d.seed, levels=tuple(d.levels), families=d.families)
    save_traces(data_dir / "train.jsonl", train)
    save_traces(data_dir / "heldout.jsonl", heldout)
    # the meta file is written last, so its existence means both splits are complete
    meta_path.write_text(json.dumps({"fingerprint": key, "n_train": len(train), "n_heldout": len(heldout),
                                     "config": asdict(recipe.data)}, indent=1))
    print(f"data: {len(train)} training and {len(heldout)} held-out traces in {data_dir}")
    return data_dir


def tokenizer_texts(traces) -> list[str]:
    """What the tokenizer learns from: questions and step-by-step completions."""
    return [f"{t.question}\n{render_completion(t, 'traces')}" for t in traces]


def prepare_tokenizer(recipe: Recipe, force: bool = False) -> Path:
    from .tokenizer import train_tokenizer

    tok_dir = recipe.dir / "tokenizer"
    meta_path = tok_dir / "meta.json"
    key = tokenizer_fingerprint(recipe)
    if not force and (tok_dir / "tokenizer.json").is_file() and _recorded(meta_path) == key:
        return tok_dir
    traces = load_traces(recipe.dir / "data" / "train.jsonl")
    tok = train_tokenizer(tokenizer_texts(traces), tok_dir, recipe.tokenizer.vocab_size)
    meta_path.write_text(json.dumps({"fingerprint": key, "vocab_size": len(tok)}, indent=1))
    print(f"tokenizer: {len(tok)} tokens in {tok_dir}")
    return tok_dir


def prepare_model(recipe: Recipe, resume: bool = False, force: bool = False) -> dict:
    """Train the model unless one built from the same data, tokenizer and settings is on disk.

    An interrupted run (checkpoints of the same settings) continues from its last checkpoint;
    checkpoints of other settings are cleared first, so a run never resumes another's state.
    """
    import shutil

    from .trainer import train

    key = model_fingerprint(recipe)
    metrics_path = recipe.dir / "train_metrics.json"
    if not force and not resume and (recipe.dir / "model.safetensors").is_file() and _recorded(metrics_path) == key:
        print(f"model: already trained in {recipe.dir} (use --force to retrain)")
        return json.loads(metrics_path.read_text())
    ckpt_dir = recipe.dir / "checkpoints"
    has_ckpt = ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*"))
    stale = has_ckpt and _recorded(ckpt_dir / "fingerprint.json") != key
    if stale and resume and not force:
        raise RecipeError(f"{ckpt_dir}: these checkpoints were made with other data, tokenizer or "
                          "settings than the recipe now asks for; run with --force to start afresh")
    if stale and not force:
        print(f"model: the recipe changed since the checkpoints in {ckpt_dir}; starting afresh")
    if force or stale:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        has_ckpt = False
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (ckpt_dir / "fingerprint.json").write_text(json.dumps({"fingerprint": key}))
    metrics = train(recipe, resume=resume or has_ckpt)
    metrics = {"fingerprint": key, **metrics}
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return metrics
