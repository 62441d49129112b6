"""The prompt a backend sees: the model's own chat template rendered with jinja2.

Every backend renders the same template the same way and then tokenizes the text with its
own tokenizer (special tokens parsed), so prompts agree token for token across backends.
Only jinja2 is needed: no transformers on a laptop that only tutors.
"""

from __future__ import annotations

import json
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


def render_prompt(template: str, question: str | list[dict], *, bos_token: str = "", eos_token: str = "") -> str:
    """The text of a conversation (a question, or earlier turns ending with the user's) up to
    where the assistant starts answering. A later turn's text starts with the earlier turn's,
    so a backend that keeps its KV cache (llama.cpp) only evaluates the new tokens."""
    return _compiled(template).render(messages=messages_of(question), add_generation_prompt=True,
                                      bos_token=bos_token, eos_token=eos_token)


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
