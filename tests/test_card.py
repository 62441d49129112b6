"""The data card: counts, claims by outcome, the filter's report when there is one, and plots."""

import json

import pytest

from tracetutor.cli import main
from tracetutor.trace import Trace, TraceFileError, save_traces
from tracetutor.train.card import make_card
from tracetutor.train.filter import FilterSettings, filter_file

pytest.importorskip("matplotlib")


def traces():
    synth = [Trace(id=f"s{i}", question=f"What is {i} + 2?", steps=[f"Sum: {i} + 2 = {i + 2}"], answer=str(i + 2),
                   source="synth", family="arithmetic", difficulty=1) for i in range(6)]
    gsm = [Trace(id="g1", question="Bella has 11 stamps and buys 9 more. How many?",
                 steps=["Let x be the stamps.", "11 + 9 = 20 stamps"], answer="20", source="gsm8k", family="gsm8k",
                 difficulty=1),
           Trace(id="g2", question="Tom has 3 bags of 4 apples. How many?", steps=["3 x 4 = 13"], answer="13",
                 source="gsm8k", family="gsm8k", difficulty=2)]
    return synth + gsm


def test_card_of_a_filtered_file(tmp_path, capsys):
    raw, kept = tmp_path / "raw.jsonl", tmp_path / "kept.jsonl"
    save_traces(raw, traces())
    filter_file(raw, kept, FilterSettings())
    assert main(["data", "card", str(kept)]) == 0
    card = tmp_path / "kept.card" / "card.md"
    assert capsys.readouterr().out.strip() == str(card)
    text = card.read_text()
    assert "Kept 7 of 8 traces" in text and "acceptance rate 87.5%" in text
    assert "| false claim | 1 | 12.5% |" in text
    assert "| synth | 6 | 85.7% |" in text and "| gsm8k | 1 | 14.3% |" in text
    assert "| arithmetic | 6 | 85.7% |" in text and "| 1 | 7 | 100.0% |" in text
    assert "| unverifiable | 1 | 12.5% |" in text  # "Let x be the stamps." among 8 claims
    assert "Unverifiable share: 12.5% of claims" in text
    for png in ("lengths.png", "steps.png"):
        assert (tmp_path / "kept.card" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{png}]({png})" in text


def test_card_of_an_unfiltered_file_says_so_and_counts_false_claims(tmp_path):
    raw = tmp_path / "raw.jsonl"
    save_traces(raw, traces())
    with open(raw, "a") as f:
        f.write("{broken\n")
    text = make_card(raw, tmp_path / "card").read_text()
    assert "8 traces (1 unreadable lines left out)." in text
    assert "No filter report beside it" in text
    assert "7 of 8 traces pass `data verify` (87.5%)" in text and "| false | 1 | 11.1% |" in text


def test_card_of_nothing_readable_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n")
    with pytest.raises(TraceFileError, match="holds no readable traces"):
        make_card(path)
