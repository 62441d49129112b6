"""Tiny Hugging Face models with random weights and local tokenizers, built in the tests.

Nothing is downloaded: the Llama gets the project's own sentencepiece tokenizer, the Qwen2 a
byte-level BPE tokenizer with Qwen2's pre-tokenizer regex, both trained here on a few
generated problems. Widths are multiples of 256 so llama.cpp's K-quants apply.
"""

from __future__ import annotations

from pathlib import Path

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus(n: int = 600, seed: int = 0) -> list[str]:
    from tracetutor.pipeline import tokenizer_texts
    from tracetutor.train.curriculum import synth_traces

    return tokenizer_texts(synth_traces(n, seed))


def build_tiny_llama(out: str | Path, *, hidden: int = 256, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                     tie: bool = True, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tracetutor.train.tokenizer import train_tokenizer

    out = Path(out)
    tok = train_tokenizer(corpus(), out, vocab_size=512)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=512, tie_word_embeddings=tie, initializer_range=0.2,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def build_tiny_qwen2(out: str | Path, *, hidden: int = 256, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                     tie: bool = False, seed: int = 0) -> Path:
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=specials[1:], clean_up_tokenization_spaces=False)
    tok.chat_template = QWEN2_TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=512, tie_word_embeddings=tie, initializer_range=0.2,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, use_sliding_window=False)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # random q/k/v biases, so a writer that drops them is caught
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


def ids_of(stream) -> list[int]:
    """The ids of a backend's `stream_ids`, without their log-probabilities."""
    return [token for token, _ in stream]
