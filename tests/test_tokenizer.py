import pytest

pytest.importorskip("sentencepiece")

from tracetutor.pipeline import tokenizer_texts
from tracetutor.train.curriculum import make_splits
from tracetutor.train.tokenizer import CHAT_TOKENS, load_tokenizer, train_tokenizer
from tracetutor.trace import render_completion

STRESS = "  Two  spaces\n\n\ttab, ünïcødé 日本 🙂 and 12,345.67 x 89 = ?\n   trailing   "


@pytest.fixture(scope="module")
def curriculum():
    train, heldout = make_splits(2000, 200, seed=5)
    return train, heldout


@pytest.fixture(scope="module")
def tokenizer(curriculum, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(tokenizer_texts(curriculum[0]), out, vocab_size=800)
    return load_tokenizer(out)  # as saved to disk, not the object in memory


def test_round_trip_is_exact_on_all_generated_text(tokenizer, curriculum):
    train, heldout = curriculum
    texts = [t.question for t in train + heldout] + [render_completion(t, m) for t in train for m in ("traces", "answers")]
    texts += [STRESS, " leading space", "trailing space ", "a\r\nb", ""]
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids, clean_up_tokenization_spaces=False) == text


def test_digits_are_single_tokens_and_bytes_fall_back(tokenizer):
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode("12345 = 678", add_special_tokens=False))
    assert [p.lstrip("▁") for p in pieces if p.lstrip("▁").isdigit()] == list("12345678")
    ids = tokenizer.encode("🙂", add_special_tokens=False)
    assert tokenizer.unk_token_id not in ids
    assert all(p.startswith("<0x") for p in tokenizer.convert_ids_to_tokens(ids))


def test_same_ids_as_sentencepiece_itself(tokenizer, curriculum):
    # llama.cpp reads the sentencepiece pieces; the HF tokenizer must agree with them exactly
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer.vocab_file))
    for text in [t.question for t in curriculum[1]] + [STRESS]:
        assert sp.encode(text) == tokenizer.encode(text, add_special_tokens=False)


def test_chat_template_and_special_tokens(tokenizer):
    for tok in CHAT_TOKENS:
        assert len(tokenizer.encode(tok, add_special_tokens=False)) == 1
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}],
                                           tokenize=False, add_generation_prompt=True)
    assert prompt == "<s><|user|>\nWhat is 2 + 2?<|end|>\n<|assistant|>\n"
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<pad>"
