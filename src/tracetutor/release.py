"""The shipped default: a trained model's small release files, tracked in git, so that a fresh
clone tutors at once.

`models/release/<name>/` holds the Hugging Face model folder (safetensors, config, tokenizer),
one GGUF variant for a laptop without torch, the held-out split and its benchmark, and
`release.json`: the recipe, the data, tokenizer and model fingerprints, the commit it was
trained at, the weights' hash and the held-out accuracy. Every command that takes MODEL finds
it by the recipe's name while the recipe has no trained model of its own; `train` and
`pipeline` always write `models/<name>/`, never here; `export` adds no file here and rewrites
none. `tracetutor release NAME` (`pipeline.release`, the one deliberate way to replace it)
copies a trained, exported and benchmarked run here.
"""

from __future__ import annotations

from pathlib import Path

from tracetutor.recipe import models_dir

DEFAULT = "tiny-tutor"
MAX_BYTES = 20_000_000
"""What a release may weigh in git."""
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "generation_config.json")
"""A LoRA run's release: its adapter; the tokenizer and chat template are its base's."""
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


def is_release(folder: Path) -> bool:
    return (Path(folder) / "release.json").is_file()
