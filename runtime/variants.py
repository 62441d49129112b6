"""Variant names (DESIGN.md), where each lives under a model folder, and whether it is fresh."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tracetutor.files import DIGEST_PREFIX, read_json, sha256_files, weight_files, weights_digest

TORCH = "torch-fp32"
KNOWN = ("torch-fp32", "onnx-fp32", "onnx-int8", "onnx-int4", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m")
ONNX_KINDS = ("fp32", "int8", "int4")
_GGUF_KIND = re.compile(r"[a-z0-9_]+")  # llama.cpp's type names, as we write them
GGUF_SOURCE_KEY = "tracetutor.source_sha256"
LORA = "gguf-lora"
"""A LoRA adapter as a GGUF that llama.cpp applies over its base's packaged GGUF."""


class VariantError(ValueError):
    """An unknown variant, or one that is not on disk; the message lists those that are."""


class StaleVariantError(ValueError):
    """A variant exported from other weights than its model folder holds now, or one that
    records no provenance at all (exported by an older version): re-exporting fixes both."""


@dataclass(frozen=True)
class Variant:
    """A variant name parsed once: `torch-fp32`, `onnx-<fp32|int8|int4>` or `gguf-<type>` for
    any llama.cpp type (`f16`, `q8_0`, `q4_k_m`, ...)."""

    format: str
    """torch, onnx or gguf."""
    kind: str
    """fp32, int8, q4_k_m, ..."""

    @classmethod
    def parse(cls, name: str) -> Variant:
        fmt, _, kind = str(name).partition("-")
        ok = {"torch": kind == "fp32", "onnx": kind in ONNX_KINDS,
              "gguf": bool(_GGUF_KIND.fullmatch(kind))}.get(fmt, False)
        if not ok:
            raise VariantError(f"unknown variant {name!r}; variant names: {', '.join(KNOWN)} "
                               "(and gguf-<type> for any llama.cpp quantization type)")
        return cls(fmt, kind)

    @property
    def name(self) -> str:
        return f"{self.format}-{self.kind}"

    def __str__(self) -> str:
        return self.name

    @property
    def full_precision(self) -> bool:
        return self.kind in ("fp32", "f32", "f16")

    def path(self, model_dir: Path) -> Path:
        """Where this variant is (or would be written) in `model_dir`. A GGUF file is found by
        its type suffix whatever its prefix, so a copied or renamed folder keeps its variants;
        a new one is named `<folder>-<type>.gguf`."""
        model_dir = Path(model_dir)
        if self.format == "torch":
            return model_dir
        if self.format == "onnx":
            return model_dir / self.name
        own = model_dir / f"{model_dir.name}-{self.kind}.gguf"
        found = [p for p in sorted(model_dir.glob(f"*-{self.kind}.gguf")) if _gguf_type(p) == self.kind]
        return own if own.is_file() or not found else found[0]


def variant_path(model_dir: Path, variant: str) -> Path:
    return Variant.parse(variant).path(model_dir)


def _gguf_type(path: Path) -> str | None:
    """The type of `<any prefix>-<type>.gguf` ("q4_k_m"): a llama.cpp type never contains '-'."""
    prefix, sep, qtype = path.stem.rpartition("-")
    return qtype if sep and prefix and qtype else None


def variants_on_disk(model_dir: Path) -> list[str]:
    hf = (model_dir / "config.json").is_file() or (model_dir / "adapter_config.json").is_file()
    found = [TORCH] if hf else []
    found += sorted(p.name for p in model_dir.glob("onnx-*") if (p / "model.onnx").is_file())
    # a file named otherwise (`…-Q8_0.gguf` from elsewhere) is not one of ours to list
    found += sorted({f"gguf-{q}" for p in model_dir.glob("*.gguf") if (q := _gguf_type(p)) and _GGUF_KIND.fullmatch(q)})
    return found


def check_variant(model_dir: Path, variant: str) -> Path:
    path = variant_path(model_dir, variant)
    on_disk = variants_on_disk(model_dir)
    if variant not in on_disk:
        listed = ", ".join(on_disk) if on_disk else "none (train or export the model first)"
        raise VariantError(f"variant {variant!r} is not in {model_dir}; variants on disk: {listed}")
    return path


def onnx_model_digest(folder: Path) -> str:
    """`model_sha256` of an ONNX variant folder: model.onnx and its external data, if any."""
    return sha256_files(sorted(Path(folder).glob("model.onnx*")))


def check_fresh(model_dir: Path, variant: str, path: Path) -> None:
    """Raise StaleVariantError unless the variant at `path` records the weights `model_dir`
    holds now; a damaged ONNX model raises ValueError naming the file.

    Cheap: a GGUF's metadata, an ONNX folder's export_meta.json and the weights' digest,
    cached by each weight file's size and mtime. A folder without weights (a copy of the
    variants alone, on a machine with only the runtime) cannot be checked and passes.
    """
    fmt = Variant.parse(variant).format
    if fmt == "torch":
        return
    model_dir, path = Path(model_dir), Path(path)
    advice = f"re-export it: tracetutor export {model_dir} --to {variant}"
    meta = _read_json(path / "export_meta.json") if fmt == "onnx" else {}
    recorded = _gguf_source(path) if fmt == "gguf" else meta.get("source_sha256")
    current = _current_digest(model_dir)
    if current is not None:
        if not (isinstance(recorded, str) and recorded.startswith(DIGEST_PREFIX)):
            raise StaleVariantError(f"{variant} ({path}) records no provenance of its weights (exported by "
                                    f"an older tracetutor), so it may come from other weights than "
                                    f"{model_dir} holds now; {advice}")
        if recorded != current:
            raise StaleVariantError(f"{variant} ({path}) was exported from other weights than {model_dir} "
                                    f"holds now; {advice}")
    # hashed at every load: our ONNX files are tens of MB, well under a second to hash
    if meta.get("model_sha256") and onnx_model_digest(path) != meta["model_sha256"]:
        raise ValueError(f"{path / 'model.onnx'}: damaged: its bytes are not the ones exported "
                         f"(model_sha256 in export_meta.json); {advice}")


_DIGESTS: dict[tuple, str] = {}


def _current_digest(model_dir: Path) -> str | None:
    """weights_digest(model_dir), hashed again only when a weight file's size or mtime changes;
    None for a folder without weights."""
    try:
        files = weight_files(model_dir)
    except FileNotFoundError:
        return None
    key = tuple((str(f.resolve()), (s := f.stat()).st_size, s.st_mtime_ns) for f in files)
    if key not in _DIGESTS:
        _DIGESTS[key] = weights_digest(model_dir)
    return _DIGESTS[key]


def _gguf_source(path: Path) -> str | None:
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception:
        from .llama_backend import check_gguf

        check_gguf(path)  # the ValueError that says what is wrong with the file
        raise
    field = reader.get_field(GGUF_SOURCE_KEY)
    source = field.contents() if field is not None else None
    del reader  # release the memory map
    return source


def _read_json(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}
