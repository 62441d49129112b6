"""A recipe's training stages, each skipped when its output is already on disk:
data (train/held-out JSONL) → tokenizer → model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from tracetutor.recipe import Recipe
from tracetutor.trace import load_traces, render_completion, save_traces


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def prepare_data(recipe: Recipe, force: bool = False) -> Path:
    """Generate the recipe's synthetic train and held-out splits into models/<name>/data/."""
    from .synth import make_splits

    data_dir = recipe.dir / "data"
    meta_path = data_dir / "meta.json"
    key = _fingerprint(asdict(recipe.data))
    if not force and meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == key:
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
    if not force and (tok_dir / "tokenizer.json").is_file():
        return tok_dir
    traces = load_traces(recipe.dir / "data" / "train.jsonl")
    tok = train_tokenizer(tokenizer_texts(traces), tok_dir, recipe.tokenizer.vocab_size)
    print(f"tokenizer: {len(tok)} tokens in {tok_dir}")
    return tok_dir


def prepare_model(recipe: Recipe, resume: bool = False, force: bool = False) -> dict:
    from .trainer import train

    metrics_path = recipe.dir / "train_metrics.json"
    if not force and not resume and metrics_path.is_file() and (recipe.dir / "model.safetensors").is_file():
        print(f"model: already trained in {recipe.dir} (use --force to retrain)")
        return json.loads(metrics_path.read_text())
    ckpt_dir = recipe.dir / "checkpoints"
    if force and ckpt_dir.is_dir():
        import shutil

        shutil.rmtree(ckpt_dir)  # a fresh run must not later resume from the old run's checkpoints
    # an interrupted run continues from its last checkpoint, asked or not
    has_ckpt = ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*"))
    return train(recipe, resume=resume or has_ckpt)
