"""The onnxruntime backend: an exported ONNX folder (`onnx-fp32`, `onnx-int8`, `onnx-int4`).

Runs with onnxruntime, numpy, tokenizers and jinja2 only (no torch, no transformers): a laptop
that only tutors installs the runtime extra and nothing else. The folder holds `model.onnx`
(a decoder with a KV cache, as optimum exports it), `config.json`, `generation_config.json`
and the tokenizer files; see `tracetutor.export.onnx`.

The graph's inputs are `input_ids`, `attention_mask`, `position_ids` (when the architecture
takes them) and `past_key_values.{i}.key/value`; its outputs are `logits` and
`present.{i}.key/value`, fed back as the next step's past.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from tracetutor.files import read_json

from .chat import prompt_pieces, template_from_folder, token_bytes_function
from .sampling import Sampler
from .types import Settings

# ModelProto fields a real model has (onnx.proto: 1 ir_version, 7 graph)
_IR_VERSION, _GRAPH = 1, 7


def check_onnx(path: str | Path) -> None:
    """Raise ValueError naming `path` and what is wrong if it is not a whole ONNX model.

    A cheap walk over the file's top-level protobuf fields catches truncated and foreign
    files without loading the weights; when the `onnx` package is installed its checker
    runs too (it is not needed at run time, so a laptop only gets the first check).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX model (export it first)")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: empty file, not an ONNX model (re-export it)")
    try:
        fields = _top_level_fields(path, size)
    except ValueError as e:
        raise ValueError(f"{path}: not a whole ONNX model ({e}); the file is truncated or corrupt, "
                         "re-export it") from None
    if _GRAPH not in fields or _IR_VERSION not in fields:
        raise ValueError(f"{path}: not an ONNX model (no graph or IR version in its {size} bytes)")
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(str(path))  # by path: works past 2 GB and with external data
    except Exception as e:  # onnx raises ValidationError, DecodeError or OSError here
        raise ValueError(f"{path}: the ONNX checker rejects it: {str(e).strip().splitlines()[0]}") from e


def _top_level_fields(path: Path, size: int) -> set[int]:
    """Field numbers of a protobuf message file, skipping over each field's payload."""

    def varint(f) -> int:
        value, shift = 0, 0
        while True:
            b = f.read(1)
            if not b:
                raise ValueError(f"ends inside a field header at byte {f.tell()} of {size}")
            value |= (b[0] & 0x7F) << shift
            if b[0] < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError(f"malformed varint at byte {f.tell()}")

    fields = set()
    with open(path, "rb") as f:
        while f.tell() < size:
            key = varint(f)
            number, wire = key >> 3, key & 7
            if wire == 0:
                varint(f)
            elif wire in (1, 5):
                f.seek(8 if wire == 1 else 4, 1)
            elif wire == 2:
                f.seek(varint(f), 1)
            else:
                raise ValueError(f"unknown protobuf wire type {wire} at byte {f.tell()}")
            if number == 0 or f.tell() > size:
                where = f"field {number} runs to byte {f.tell()}" if number else "field number 0"
                raise ValueError(f"{where}, but the file has {size} bytes")
            fields.add(number)
    return fields


class OnnxBackend:
    name = "onnxruntime"

    def __init__(self, folder: str | Path, *, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError("the ONNX backend needs onnxruntime: pip install 'tracetutor[runtime]' "
                              "(or pip install onnxruntime)") from e
        from tokenizers import Tokenizer

        self.folder = folder = Path(folder)
        model_path = folder / "model.onnx"
        check_onnx(model_path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own message says little about which file or why
            raise ValueError(f"{model_path}: onnxruntime cannot load it: {e}") from e
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

        config = read_json(folder / "config.json")
        self.n_layers = config["num_hidden_layers"]
        self.context_length = int(config["max_position_embeddings"])
        n_heads = config["num_attention_heads"]
        self.n_kv_heads = config.get("num_key_value_heads") or n_heads
        self.head_dim = config.get("head_dim") or config["hidden_size"] // n_heads
        past_types = [i.type for i in self.session.get_inputs() if i.name.startswith("past_key_values.")]
        if not past_types:
            raise ValueError(f"{model_path}: exported without a KV cache (no past_key_values inputs); "
                             "re-export it with tracetutor.export.onnx.export_onnx")
        self.past_dtype = np.float16 if "float16" in past_types[0] else np.float32

        tokenizer_file = folder / "tokenizer.json"
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as e:  # tokenizers raises its own Exception type, naming no file
            raise ValueError(f"{tokenizer_file}: cannot load the tokenizer ({e}); re-export the variant") from None
        self._token_bytes = token_bytes_function(self.tokenizer)
        # pieces as stored (`▁` for a space, `<0x41>` for a byte) are never shorter than their text
        self.max_token_bytes = max(len(piece.encode()) for piece in self.tokenizer.get_vocab())
        self.template, self.bos_token, self.eos_token = template_from_folder(folder)
        self.eos_ids = self._eos_ids(config)
        self.eos_id = min(self.eos_ids)

    def _eos_ids(self, config: dict) -> set[int]:
        gen_file = self.folder / "generation_config.json"
        eos = read_json(gen_file).get("eos_token_id") if gen_file.is_file() else None
        if eos is None and self.eos_token:
            eos = self.tokenizer.token_to_id(self.eos_token)
        if eos is None:
            eos = config.get("eos_token_id")
        if eos is None:
            raise ValueError(f"{self.folder}: no eos token in generation_config.json, tokenizer_config.json "
                             "or config.json")
        return set(eos) if isinstance(eos, list) else {eos}

    # --- text ----------------------------------------------------------------------------

    @cached_property
    def controls(self) -> frozenset[str]:
        """The texts of the tokenizer's special tokens, which only the chat template writes."""
        return frozenset(t.content for t in self.tokenizer.get_added_tokens_decoder().values() if t.special)

    def encode_prompt(self, question: str | list[dict]) -> list[int]:
        # the template writes <s> itself where the model has one; a message's text is plain text
        pieces = prompt_pieces(self.template, question, self.controls,
                               bos_token=self.bos_token, eos_token=self.eos_token)
        return [i for text, control in pieces for i in self.tokenize(text, special=control)]

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Token ids of `text`; with `special`, special-token text is parsed as those tokens."""
        self.tokenizer.encode_special_tokens = not special
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_bytes(self, token: int) -> bytes | None:
        return self._token_bytes(token) if self._token_bytes is not None else None

    # --- the model -----------------------------------------------------------------------

    def _empty_past(self) -> dict[str, np.ndarray]:
        shape = (1, self.n_kv_heads, 0, self.head_dim)  # (B, n_kv, T_past, hd)
        return {f"past_key_values.{i}.{kv}": np.zeros(shape, self.past_dtype)
                for i in range(self.n_layers) for kv in ("key", "value")}

    def _forward(self, ids: list[int], past: dict[str, np.ndarray], n_past: int):
        """(logits (T, vocab), next past) for `ids` following `n_past` cached positions."""
        n = len(ids)
        feed = {"input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, n_past + n), dtype=np.int64), **past}
        if "position_ids" in self.input_names:
            feed["position_ids"] = np.arange(n_past, n_past + n, dtype=np.int64)[None]
        out = dict(zip(self.output_names, self.session.run(self.output_names, feed)))
        present = {"past_key_values." + k[len("present."):]: v for k, v in out.items() if k.startswith("present.")}
        return out["logits"][0], present

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits (len(ids), vocab) of one teacher-forced forward pass."""
        return self._forward(list(ids), self._empty_past(), 0)[0]

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[tuple[int, float | None]]:
        sampler = Sampler(settings)
        logits, past = self._forward(list(prompt), self._empty_past(), 0)
        n_past = len(prompt)
        for _ in range(settings.max_new_tokens):
            tok = sampler.pick(logits[-1])
            if tok in self.eos_ids:
                return
            yield tok, sampler.logprob(logits[-1], tok)
            logits, past = self._forward([tok], past, n_past)
            n_past += 1

    def generate_batch(self, prompts: list[list[int]], settings: Settings) -> list[list[int]]:
        """Greedy completions, one prompt at a time (onnxruntime on CPU gains little from batching)."""
        greedy = dataclasses.replace(settings, temperature=0.0)
        return [[tok for tok, _ in self.stream_ids(p, greedy)] for p in prompts]

    def close(self) -> None:
        self.session = None
