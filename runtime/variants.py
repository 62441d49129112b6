"""Variant names (DESIGN.md) and where each lives under a model folder."""

from __future__ import annotations

from pathlib import Path

TORCH = "torch-fp32"
KNOWN = ("torch-fp32", "onnx-fp32", "onnx-int8", "onnx-int4", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m")


class VariantError(ValueError):
    """An unknown variant, or one that is not on disk; the message lists those that are."""


def variant_path(model_dir: Path, variant: str) -> Path:
    if variant == TORCH:
        return model_dir
    if variant.startswith("onnx-"):
        return model_dir / variant
    if variant.startswith("gguf-"):
        return model_dir / f"{model_dir.name}-{variant[5:]}.gguf"
    raise VariantError(f"unknown variant {variant!r}; variant names: {', '.join(KNOWN)} "
                       "(and gguf-<type> for any llama.cpp quantization type)")


def variants_on_disk(model_dir: Path) -> list[str]:
    hf = (model_dir / "config.json").is_file() or (model_dir / "adapter_config.json").is_file()
    found = [TORCH] if hf else []
    found += sorted(p.name for p in model_dir.glob("onnx-*") if (p / "model.onnx").is_file())
    prefix = f"{model_dir.name}-"
    found += sorted("gguf-" + p.stem[len(prefix):] for p in model_dir.glob(f"{prefix}*.gguf"))
    return found


def check_variant(model_dir: Path, variant: str) -> Path:
    path = variant_path(model_dir, variant)
    on_disk = variants_on_disk(model_dir)
    if variant not in on_disk:
        listed = ", ".join(on_disk) if on_disk else "none (train or export the model first)"
        raise VariantError(f"variant {variant!r} is not in {model_dir}; variants on disk: {listed}")
    return path
