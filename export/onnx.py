"""ONNX export: a Hugging Face checkpoint to `onnx-fp32`, then `onnx-int8` / `onnx-int4`.

Each variant is a folder `models/<name>/onnx-<x>/` that the onnxruntime backend loads alone:

    model.onnx (+ external data past 2 GB)     a decoder with a KV cache (optimum's
                                               `text-generation-with-past`)
    config.json, generation_config.json        layers, heads and eos for the runtime
    tokenizer.json, tokenizer_config.json, ... the checkpoint's own tokenizer and chat template
    export_meta.json                           source_sha256 (the weights' digest), model_sha256
                                               (model.onnx and its data), quantization, sizes

A folder is written under a temporary name beside its final place and renamed when complete
(tracetutor.files.atomic_path), so a folder named `onnx-*` is never half written. The runtime
compares source_sha256 with the weights beside it and model_sha256 with the model's bytes.

    int8  8-bit weight blocks of 32 (MatMulNBits), activations quantized to int8 in blocks
    int4  asymmetric 4-bit weight blocks of 32, the v and down projections at 8 bits
          (MatMulNBits), activations quantized to int8 in blocks
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from tracetutor.files import atomic_path, weights_digest, write_json
from tracetutor.runtime.onnx_backend import check_onnx
from tracetutor.runtime.variants import onnx_model_digest

__all__ = ["export_onnx", "quantize_onnx", "check_onnx", "QUANTIZATIONS"]

OPSET = 18  # the lowest opset optimum recommends for Llama and Qwen2
TASK = "text-generation-with-past"
QUANTIZATIONS = ("int8", "int4")
BLOCK_SIZE = 32  # weights per quantization block (one scale each), as llama.cpp's q8_0 and q4 types
# MatMulNBits computes with int8 activations, quantized in blocks along K as llama.cpp's q8 dot
# products do. Unset (0), onnxruntime's CPU kernel for 8-bit weights dequantizes on every call:
# SmolLM2's int8 decoded 7.6 tokens/s against 50 at level 4 (fp32: 35), for KL 1.6e-3 against 6.7e-4.
ACCURACY_LEVEL = 4
INT8_IN_INT4 = ("v_proj/MatMul", "down_proj/MatMul")  # onnx-int4 keeps these at 8 bits (Llama, Qwen2 names)
MODEL_FILE = "model.onnx"
EXTERNAL_DATA = "model.onnx_data"
PROTOBUF_LIMIT = 2**31 - 1  # one .onnx file holds at most 2 GB; past that, weights go to EXTERNAL_DATA
# copied as they are from the checkpoint (optimum re-saves the tokenizer; the originals are the contract)
CARRIED_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "tokenizer.model", "chat_template.jinja", "added_tokens.json")
# op types that say how a graph's matrix products are quantized
QUANT_OPS = ("MatMul", "MatMulNBits", "MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
             "GatherBlockQuantized")


# --------------------------------------------------------------------------------------------
# API entry points


def export_onnx(model_dir: str | Path, out_dir: str | Path, *, source_sha256: str | None = None) -> dict:
    """Export the checkpoint in `model_dir` to an fp32 ONNX folder `out_dir` with a KV cache.

    `source_sha256` is the provenance recorded: weights_digest(model_dir) unless given (a LoRA
    adapter's variants record the adapter's, not its merged copy's).
    Returns {"path", "bytes", "inputs", "outputs", "source_sha256"}: the model file, its size on
    disk (external data included), the graph's input and output names and the provenance.
    """
    import torch
    from optimum.exporters.onnx import main_export

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json, not a Hugging Face model folder")
    source_sha256 = source_sha256 or weights_digest(model_dir)
    with _staging(out_dir) as tmp:
        with _quiet():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # on every Python branch in the model
            main_export(str(model_dir), tmp, task=TASK, opset=OPSET, device="cpu", dtype="fp32",
                        library_name="transformers", local_files_only=True,
                        do_validation=False)  # parity is checked against torch by the caller, on real prompts
        _carry_files(model_dir, tmp)
        check_onnx(tmp / MODEL_FILE)
        result = _describe(tmp, out_dir)
        _write_meta(tmp, {
            "variant": "onnx-fp32",
            "source": str(model_dir),
            "source_sha256": source_sha256,
            "model_sha256": onnx_model_digest(tmp),
            "quantization": None,
            "opset": OPSET,
            "task": TASK,
            **_sizes(tmp),
            "inputs": result["inputs"],
            "outputs": result["outputs"],
            "versions": _versions("torch", "transformers", "optimum-onnx", "onnx"),
        })
    return {**result, "source_sha256": source_sha256}


def quantize_onnx(fp32_dir: str | Path, out_dir: str | Path, kind: str) -> dict:
    """Quantize the fp32 ONNX folder `fp32_dir` into `out_dir` (same layout).

    Returns {"path", "bytes", "inputs", "outputs", "fp32_bytes", "ops"}: "ops" counts the
    graph's matrix-product op types (MatMulNBits, MatMulInteger, DynamicQuantizeLinear, the
    MatMuls left in fp32, ...), so a caller can see what was quantized.
    """
    if kind not in QUANTIZATIONS:
        raise ValueError(f"unknown ONNX quantization {kind!r}; known: {', '.join(QUANTIZATIONS)}")
    import onnx

    fp32_dir, out_dir = Path(fp32_dir), Path(out_dir)
    check_onnx(fp32_dir / MODEL_FILE)
    source_meta = _read_meta(fp32_dir)
    external = _model_bytes(fp32_dir) > PROTOBUF_LIMIT or (fp32_dir / EXTERNAL_DATA).exists()
    with _staging(out_dir) as tmp, _quiet():
        settings = _quantize(fp32_dir / MODEL_FILE, tmp / MODEL_FILE, external, kind)
        _carry_files(fp32_dir, tmp)
        check_onnx(tmp / MODEL_FILE)
        result = _describe(tmp, out_dir)
        graph = onnx.load(str(tmp / MODEL_FILE), load_external_data=False)
        counts = Counter(node.op_type for node in graph.graph.node)
        result["ops"] = {op: counts[op] for op in QUANT_OPS if counts[op]}
        result["fp32_bytes"] = _model_bytes(fp32_dir)
        _write_meta(tmp, {
            "variant": f"onnx-{kind}",
            "source": source_meta.get("source", str(fp32_dir)),
            "source_sha256": source_meta.get("source_sha256"),
            "model_sha256": onnx_model_digest(tmp),
            "quantized_from": str(fp32_dir),
            "quantization": {"kind": kind, **settings},
            "opset": source_meta.get("opset"),
            "task": source_meta.get("task", TASK),
            **_sizes(tmp),
            "fp32_bytes": result["fp32_bytes"],
            "ops": result["ops"],
            "inputs": result["inputs"],
            "outputs": result["outputs"],
            "versions": _versions("onnxruntime", "onnx"),
        })
    return result


# --------------------------------------------------------------------------------------------
# Quantizers


def _quantize(src: Path, dst: Path, external: bool, kind: str) -> dict:
    """Blockwise quantization of every MatMul's constant weights (MatMulNBits), the activations
    quantized in blocks as they come, as llama.cpp's q8_0 and q4_k_m do.

    Why not onnxruntime's dynamic int8 (MatMulInteger): it quantizes each activation tensor to
    uint8 with one scale for the whole tensor, and a pretrained model's activation outliers make
    that scale coarse; here each block of 32 has its own. On SmolLM2-135M with a LoRA merged,
    dynamic int8 measured KL 2.8e-1, top-1 86.6% against torch; 8-bit blocks 1.6e-3, 99.1%. For int4, as
    q4_k_m keeps attn_v and ffn_down at higher precision, the v and down projections stay at
    8 bits and the rest take asymmetric 4-bit blocks (SmolLM2: KL 5.2e-2, top-1 95.1%,
    against 1.5e-1, 92.6% for symmetric 4-bit everywhere).
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(src))
    kept = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name.endswith(INT8_IN_INT4)]
    # (bits, symmetric, the only MatMuls to convert or None for all that are left); a pass turns
    # its MatMuls into MatMulNBits, so the next one skips them
    if kind == "int8":
        passes = [(8, True, None)]
    else:
        passes = ([(8, True, kept)] if kept else []) + [(4, False, None)]
    for bits, symmetric, only in passes:
        exclude = [] if only is None else [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in only]
        quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=BLOCK_SIZE, is_symmetric=symmetric,
                                         accuracy_level=ACCURACY_LEVEL, op_types_to_quantize=("MatMul",),
                                         nodes_to_exclude=exclude)
        quantizer.process()
        model = quantizer.model.model
    onnx.save_model(model, str(dst), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=EXTERNAL_DATA)
    return {"method": "onnxruntime.MatMulNBitsQuantizer", "block_size": BLOCK_SIZE, "op_types": ["MatMul"],
            "accuracy_level": ACCURACY_LEVEL,
            "bits": 8 if kind == "int8" else 4, "symmetric": kind == "int8",
            "int8_nodes": [] if kind == "int8" else kept}


# --------------------------------------------------------------------------------------------
# Folder plumbing


@contextmanager
def _staging(out_dir: Path):
    """A temporary folder beside `out_dir` that replaces it only if the block completes."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        yield tmp


@contextmanager
def _quiet():
    """What the libraries say about their own workings while we export, silenced: transformers'
    and optimum's warnings (a deprecated argument they pass themselves, tied weights they
    deduplicate), torch's notes on how it lowers an op, onnxruntime's advice to pre-process
    before quantizing. onnxruntime logs that on the root logger, which, without a handler,
    would install one printing every later warning of every library; a NullHandler stands in."""
    import logging

    loggers = [logging.getLogger(name) for name in ("transformers", "optimum", None)]  # None: the root
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    stand_in = logging.NullHandler() if not root.handlers else None
    if stand_in:
        root.addHandler(stand_in)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if stand_in:
            root.removeHandler(stand_in)


def _carry_files(src: Path, dst: Path) -> None:
    """Config and tokenizer files from `src`; tokenizer_config.json gets the chat template."""
    for name in CARRIED_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    config_file, template_file = dst / "tokenizer_config.json", dst / "chat_template.jinja"
    if config_file.is_file() and template_file.is_file():
        config = json.loads(config_file.read_text())
        if "chat_template" not in config:  # transformers >= 4.43 saves it to its own file
            config["chat_template"] = template_file.read_text()
            config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _describe(folder: Path, final: Path) -> dict:
    import onnx

    graph = onnx.load(str(folder / MODEL_FILE), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    return {"path": str(final / MODEL_FILE), "bytes": _model_bytes(folder),
            "inputs": [i.name for i in graph.input if i.name not in initializers],
            "outputs": [o.name for o in graph.output]}


def _model_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob(MODEL_FILE + "*"))  # model.onnx + model.onnx_data


def _sizes(folder: Path) -> dict:
    return {"model_bytes": _model_bytes(folder),
            "folder_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file())}


def _versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def _write_meta(folder: Path, meta: dict) -> None:
    write_json(folder / "export_meta.json", meta)


def _read_meta(folder: Path) -> dict:
    path = folder / "export_meta.json"
    return json.loads(path.read_text()) if path.is_file() else {}
