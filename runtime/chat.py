"""The prompt a backend sees: the model's own chat template rendered with jinja2.

Every backend renders the same template the same way and cuts the text at the template's own
control tokens (`prompt_pieces`); its tokenizer turns those into their ids and the text between
them into plain tokens, so prompts agree token for token across backends and a message's text
never becomes a control token. Only jinja2 is needed: no transformers on a laptop that only tutors.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=16)
def _compiled(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ValueError(msg))
    return env.from_string(template)


def messages_of(question: str | list[dict]) -> list[dict]:
    """A question is a one-turn conversation; a list of {role, content} messages is kept as is."""
    return [{"role": "user", "content": question}] if isinstance(question, str) else list(question)


def render_prompt(template: str, question: str | list[dict], *, bos_token: str = "", eos_token: str = "",
                  add_generation_prompt: bool = True) -> str:
    """The text of a conversation (a question, or earlier turns ending with the user's) up to
    where the assistant starts answering. A later turn's text starts with the earlier turn's,
    so a backend that keeps its KV cache (llama.cpp) only evaluates the new tokens. Without
    `add_generation_prompt`, the conversation as it stands (training renders whole ones)."""
    return _compiled(template).render(messages=messages_of(question), add_generation_prompt=add_generation_prompt,
                                      bos_token=bos_token, eos_token=eos_token)


# a message's special-token text is hidden behind an index while the template renders
_HIDDEN = re.compile("\ue000(\\d+)\ue001")


@lru_cache(maxsize=16)
def _control_pattern(controls: frozenset[str]) -> re.Pattern:
    # longest first, as tokenizers match: <|im_end|> before a shorter token it starts with
    alternatives = [re.escape(c) for c in sorted(controls, key=len, reverse=True) if c]
    return re.compile(f"({'|'.join(alternatives) or '(?!)'})")


def prompt_pieces(template: str, question: str | list[dict], controls: frozenset[str], *,
                  bos_token: str = "", eos_token: str = "", add_generation_prompt: bool = True) -> list[tuple[str, bool]]:
    """The rendered prompt (`render_prompt`) as (text, is_control) pieces: each control token the
    template writes, and the plain text between them. `controls` are the texts of the tokenizer's
    control tokens. Control-token text inside a message (a learner typing <|end|>) stays in the
    plain text, so it is tokenized as the characters typed and cannot fake a turn; a prompt whose
    messages hold none is cut exactly where its tokenizer cuts it when parsing special tokens."""
    control = _control_pattern(controls)
    hidden: list[str] = []

    def hide(m: re.Match) -> str:
        hidden.append(m[0])
        return f"\ue000{len(hidden) - 1}\ue001"

    # the marker characters themselves are hidden too, so typed ones come back as typed
    inner = re.compile(f"{control.pattern}|[\ue000\ue001]")
    messages = [{**m, "content": inner.sub(hide, m["content"])} if isinstance(m.get("content"), str) else m
                for m in messages_of(question)]
    text = render_prompt(template, messages, bos_token=bos_token, eos_token=eos_token,
                         add_generation_prompt=add_generation_prompt)
    pieces = []
    for i, part in enumerate(control.split(text)):
        if part:
            pieces.append((part, True) if i % 2 else (_HIDDEN.sub(lambda m: hidden[int(m[1])], part), False))
    return pieces


def encode_chat(tokenizer, question: str | list[dict], *, add_generation_prompt: bool = True) -> list[int]:
    """A Hugging Face tokenizer's ids of a conversation rendered by `prompt_pieces`, as every
    backend tokenizes it: what transformers' apply_chat_template gives for ordinary text, but
    control-token text inside a message stays plain. Training and torch's prompts use it."""
    if not tokenizer.chat_template:
        raise ValueError(f"{tokenizer.name_or_path}: no chat template (tokenizer_config.json or chat_template.jinja)")
    controls = frozenset(t.content for t in tokenizer.added_tokens_decoder.values() if t.special)
    pieces = prompt_pieces(tokenizer.chat_template, question, controls, bos_token=tokenizer.bos_token or "",
                           eos_token=tokenizer.eos_token or "", add_generation_prompt=add_generation_prompt)
    return [i for text, control in pieces
            for i in tokenizer.encode(text, add_special_tokens=False, split_special_tokens=not control)]


def template_from_folder(folder: str | Path) -> tuple[str, str, str]:
    """(chat template, bos token, eos token) from a Hugging Face model or tokenizer folder."""
    folder = Path(folder)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    template = cfg.get("chat_template")
    if template is None and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text()
    if template is None:
        raise ValueError(f"{folder}: no chat template (tokenizer_config.json or chat_template.jinja)")

    def token(value):
        return value.get("content", "") if isinstance(value, dict) else (value or "")

    return template, token(cfg.get("bos_token")), token(cfg.get("eos_token"))


def token_bytes_function(tokenizer):
    """For a `tokenizers.Tokenizer` whose decoding is plain byte concatenation (sentencepiece
    pieces with `▁` and byte fallback, or GPT-2 style byte-level BPE), a function giving the
    bytes one token adds to the text; None for any other decoder.

    With it the engine decodes a stream token by token with an incremental UTF-8 decoder, so
    what it streams is exactly its final text: re-decoding the whole sequence can rewrite text
    already shown (a run of byte tokens renders differently once it turns out to be invalid).
    """
    decoder = json.loads(tokenizer.to_str()).get("decoder") or {}
    kinds = [d.get("type") for d in decoder.get("decoders", [decoder])]
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    if kinds == ["ByteLevel"]:
        # GPT-2's table from bytes to printable characters, inverted
        printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
        chars = printable + [256 + i for i in range(256 - len(printable))]
        to_byte = dict(zip(map(chr, chars), printable + [b for b in range(256) if b not in printable]))

        def piece(text: str) -> bytes:
            return bytes(to_byte[c] for c in text)
    elif kinds == ["Replace", "ByteFallback", "Fuse"] and decoder["decoders"][0].get("content") == " ":
        def piece(text: str) -> bytes:
            if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
                return bytes([int(text[3:5], 16)])
            return text.replace("▁", " ").encode()
    else:
        return None
    cache: dict[int, bytes] = {}

    def token_bytes(token: int) -> bytes:
        if token not in cache:
            text = tokenizer.id_to_token(token)
            cache[token] = b"" if token in special or text is None else piece(text)
        return cache[token]

    return token_bytes
