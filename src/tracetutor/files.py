"""Files the stages write: whole or not at all, and the one hash that names a model's weights.

Stages write through `atomic_path`, so a file under its final name is complete: a run killed
half way leaves the old file or none, never a truncated one. (The trainer's final weights are
the exception: its metrics are written last and removed first, so a model without them is
retrained.) Every exported
variant records `weights_digest` of the model it came from, so the runtime can tell a stale
variant from a fresh one by comparing two strings.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

DIGEST_PREFIX = "sha256:"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` (a file or a folder) to write into; when the block ends
    without error it replaces `path`, otherwise it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # beside the target, so the rename never crosses file systems; one per process and thread
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if path.is_dir():
                raise IsADirectoryError(f"{path}: is a folder; not replaced by a file")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # a folder cannot be replaced by rename; the gap is as short as it can be
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | Path):
    """The JSON in `path`; ValueError naming the file if it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); restore or re-create it") from None


def sha256_files(files: Iterable[str | Path]) -> str:
    """`sha256:<hex>` over the bytes of `files` in order: the one provenance hash format."""
    h = hashlib.sha256()
    for file in files:
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return DIGEST_PREFIX + h.hexdigest()


def weight_files(model_dir: str | Path) -> list[Path]:
    """The files holding a Hugging Face model folder's weights (a LoRA adapter's own, for an
    adapter folder), in a fixed order."""
    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no model weights (*.safetensors); train the model first")
    return files


def weights_digest(model_dir: str | Path) -> str:
    """The provenance of every variant exported from `model_dir`."""
    return sha256_files(weight_files(model_dir))
