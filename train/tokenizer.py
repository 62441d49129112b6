"""The model's own tokenizer: sentencepiece trained on the curriculum, saved for Hugging Face.

Digits are split one per token (arithmetic is learned digit by digit), unknown characters fall
back to bytes, and no normalisation touches the text: spaces, runs of spaces and newlines
survive encode/decode exactly, so llama.cpp (which reads the same sentencepiece pieces) gives
the same ids.
"""

from __future__ import annotations

import io
from pathlib import Path

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = [USER, ASSISTANT, END]

# The rendered conversation: <s><|user|>\n{question}<|end|>\n<|assistant|>\n{completion}<|end|>
# No system prompt (prompt erasure); generation stops at <|end|>.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>' }}"
    "{% if not loop.last or message['role'] != 'assistant' %}{{ '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_tokenizer(texts, out_dir: str | Path, vocab_size: int = 1024):
    """Train sentencepiece on `texts` and save a Hugging Face tokenizer in `out_dir`.

    Returns the loaded `PreTrainedTokenizerFast`.
    """
    import sentencepiece as spm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="bpe",  # llama.cpp's "llama" tokenizer reproduces sentencepiece BPE exactly
        vocab_size=vocab_size,
        character_coverage=1.0,
        split_digits=True,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        allow_whitespace_only_pieces=True,
        split_by_whitespace=True,
        max_sentence_length=1 << 14,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3,
        unk_piece=UNK, bos_piece=BOS, eos_piece=EOS, pad_piece=PAD,
        control_symbols=CHAT_TOKENS,
        hard_vocab_limit=False,  # a small corpus gives a smaller vocabulary, not an error
        minloglevel=2,
        num_threads=2,
    )
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    tok = _hf_tokenizer(out_dir / "tokenizer.model")
    tok.save_pretrained(out_dir)
    return tok


def _hf_tokenizer(spm_file: Path):
    from transformers import LlamaTokenizerFast

    tok = LlamaTokenizerFast(
        vocab_file=str(spm_file),
        from_slow=True,
        legacy=False,
        add_prefix_space=False,
        add_bos_token=False,  # the chat template writes <s> itself
        add_eos_token=False,
        bos_token=BOS, eos_token=END, unk_token=UNK, pad_token=PAD,
        additional_special_tokens=CHAT_TOKENS,
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
