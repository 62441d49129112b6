import json

import pytest

from tracetutor.apps.bench import ProblemsError, format_table, read_problems, score
from tracetutor.cli import main
from tracetutor.runtime.engine import Done

# --- scoring ---------------------------------------------------------------------------------

PROBLEMS = [
    {"id": "p1", "question": "q1", "answer": "12", "family": "add", "difficulty": 1},
    {"id": "p2", "question": "q2", "answer": "3/4", "family": "add", "difficulty": 1},
    {"id": "p3", "question": "q3", "answer": "7", "family": "mul", "difficulty": 2},
    {"id": "p4", "question": "q4", "answer": "10", "family": "mul", "difficulty": 2},
    {"id": "p5", "question": "q5", "answer": "1"},  # in no family and at no level
]


def done(steps, answer, n_tokens, **stats):
    lines = [f"Step {k}: {s}" for k, s in enumerate(steps, 1)] + ([f"Answer: {answer}"] if answer else [])
    return Done(text="\n".join(lines), steps=steps, answer=answer, stats={"n_tokens": n_tokens, **stats})


OUTPUTS = [
    done(["5 + 7 = 12"], "12", 10),  # right; its step holds
    done(["3 / 4 = 0.75", "so three quarters"], "0.75", 20),  # right after canonicalisation; a step without a claim
    done(["3 x 4 = 13", "13 - 6 = 7"], "7", 30),  # right answer, one false step
    done([], None, 40),  # no answer line
    done([], "1", 50),  # right, answer only
]


def test_score_counts_what_the_outputs_got_right():
    r = score(PROBLEMS, OUTPUTS)
    assert (r["accuracy"], r["n"], r["correct"]) == (0.8, 5, 4)
    assert r["by_difficulty"] == {"1": {"accuracy": 1.0, "n": 2}, "2": {"accuracy": 0.5, "n": 2}}
    assert r["by_family"] == {"add": {"accuracy": 1.0, "n": 2}, "mul": {"accuracy": 0.5, "n": 2}}
    assert r["step_validity"] == 0.6  # 3 of 5 steps make a claim that holds
    assert r["mean_tokens"] == 30.0
    assert r["wrong"] == [{"id": "p4", "question": "q4", "expected": "10", "got": None, "completion": ""}]
    assert "corrected_share" not in r


def test_score_of_checked_outputs_counts_the_corrected_problems():
    checked = [
        done(["5 + 7 = 12"], "12", 10, corrected_steps=[]),
        done(["3 / 4 = 0.75", "so three quarters"], "0.75", 20, corrected_steps=[]),
        done(["3 x 4 = 12", "12 - 6 = 6"], "6", 30, corrected_steps=[1]),  # the correction changed the answer
        done(["4 + 6 = 10"], "10", 40, corrected_steps=[1]),
        done([], "1", 50, corrected_steps=[]),
    ]
    r = score(PROBLEMS, checked)
    assert (r["accuracy"], r["correct"]) == (0.8, 4)
    assert r["by_difficulty"] == {"1": {"accuracy": 1.0, "n": 2}, "2": {"accuracy": 0.5, "n": 2}}
    assert r["step_validity"] == 0.8333  # 5 of 6
    assert r["corrected_share"] == 0.4
    assert [w["id"] for w in r["wrong"]] == ["p3"]


def test_score_of_no_problems_has_no_accuracy():
    r = score([], [])
    assert (r["accuracy"], r["n"], r["step_validity"]) == (None, 0, None)


def test_table_shows_each_variant_and_level():
    report = {"variants": {"torch-fp32": {**score(PROBLEMS, OUTPUTS), "seconds": 1.5}}}
    lines = format_table(report).splitlines()
    assert lines[0].split() == ["variant", "accuracy", "steps", "ok", "level", "1", "level", "2", "n", "seconds"]
    assert lines[2].split() == ["torch-fp32", "80.0%", "60.0%", "100.0%", "50.0%", "5", "1.5"]


# --- the problems file -----------------------------------------------------------------------


def test_read_problems_fills_ids_and_accepts_a_bom_and_numeric_answers(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps({"question": "1 + 1?", "answer": 2}), "", json.dumps({"id": "x", "question": "q", "answer": "3"})]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    problems = read_problems(path)
    assert [(p["id"], p["question"], p["answer"]) for p in problems] == [("p/1", "1 + 1?", "2"), ("x", "q", "3")]
    assert [p["id"] for p in read_problems(path, limit=1)] == ["p/1"]


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":1: not valid UTF-8"),
    (b'{"question": 5, "answer": "5"}\n', ":1: field 'question': expected a string, got int"),
    (b'{"question": "q", "answer": "1"}\n{"question": ["a", "b"], "answer": "1"}\n',
     ":2: field 'question': expected a string, got list"),
    (b'{"question": "q", "answer": [1]}\n', ":1: field 'answer': expected a string or a number, got list"),
    (b'{"question": "q", "answer": "1"}\n{"question": "no answer"}\n', ":2: missing field 'answer'"),
    (b'{"question": "q", "answer": "1", "family": ["a"]}\n', ":1: field 'family': expected a string or null"),
    (b'{"question": "q", "answer": "1"}\n{"question": "q", \n', ":2: invalid JSON"),
    (b'["q", "1"]\n', ":1: expected a JSON object, got list"),
])
def test_a_bad_problems_file_is_one_line_naming_file_and_line(tmp_path, capsys, content, message):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(ProblemsError):
        read_problems(path)
    # the model folder need not hold a model: the problems are read before it is loaded
    assert main(["bench", str(tmp_path), "--problems", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tracetutor: error: {path}{message}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("content", ["", "\n \n"])
def test_a_problems_file_without_problems_is_an_error(tmp_path, content):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemsError, match="holds no problems"):
        read_problems(path)


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_limit_below_one_is_refused(tmp_path, capsys, limit):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    assert main(["bench", str(tmp_path), "--problems", str(path), "--limit", limit]) == 2
    err = capsys.readouterr().err
    assert err == f"tracetutor: error: --limit must be at least 1, got {limit}\n"


def test_score_of_probes_gives_each_form_beside_its_originals():
    problems = [
        {"id": "a#original", "question": "qa", "answer": "1", "form": "original", "probe_of": "a"},
        {"id": "b#original", "question": "qb", "answer": "2", "form": "original", "probe_of": "b"},
        {"id": "a#noop", "question": "qa2", "answer": "1", "form": "noop", "probe_of": "a"},
        {"id": "b#noop", "question": "qb2", "answer": "2", "form": "noop", "probe_of": "b"},
        {"id": "b#symbolic", "question": "qb3", "answer": "5", "form": "symbolic", "probe_of": "b"},
    ]
    outputs = [done([], "1", 1), done([], "3", 1), done([], "9", 1), done([], "2", 1), done([], "5", 1)]
    r = score(problems, outputs)
    assert r["by_form"] == {"original": {"accuracy": 0.5, "n": 2, "original_accuracy": 0.5},
                            "noop": {"accuracy": 0.5, "n": 2, "original_accuracy": 0.5},
                            "symbolic": {"accuracy": 1.0, "n": 1, "original_accuracy": 0.0}}
    assert "by_form" not in score(PROBLEMS, OUTPUTS)


# --- the full benchmark: figures against torch, the verdict, the report ------------------------

from tracetutor.apps import bench_report  # noqa: E402

HAND = [{"id": f"h{i}", "question": f"q{i}", "answer": str(i), "steps": [f"s: {i} x 1 = {i}"], "difficulty": 1 + i % 2}
        for i in range(1, 21)]


def variant_result(answers, kl=0.0, top1=1.0, size=100, speed=50.0, texts=None):
    """What apps/bench_variant.py writes for a variant answering `answers`, one per HAND problem."""
    texts = texts or [f"Step 1: s: {a} x 1 = {a}\nAnswer: {a}" for a in answers]
    greedy = [{"text": t, "steps": [t.splitlines()[0][8:]], "answer": a, "n_tokens": 5} for t, a in zip(texts, answers)]
    checked = [{**g, "corrected_steps": []} for g in greedy]
    return {"greedy": greedy, "checked": checked, "too_long": 0,
            "teacher_forced": {"traces": 20, "compared": 20, "kl_divergence": kl, "top1_agreement": top1,
                               "prompt_tokens_per_s": 900.0},
            "tokens_per_s": speed, "ttft_s": 0.01, "size_bytes": size, "peak_rss_bytes": 10 * size,
            "seconds": {"load_s": 0.1, "answers_s": 1.0, "checked_s": 0.1, "batch_tokens_per_s": 80.0}}


def test_a_variant_that_changes_one_answer_moves_accuracy_and_mcnemar_as_expected():
    right = [p["answer"] for p in HAND]
    one_off = right[:4] + ["999"] + right[5:]  # problem 5 answered wrong
    results = {"torch-fp32": variant_result(right, size=400, speed=20.0),
               "gguf-q8_0": variant_result(one_off, kl=0.002, top1=0.99, size=100, speed=90.0)}
    r = bench_report.summarise(HAND, results, "torch-fp32", ["torch-fp32", "gguf-q8_0"])
    t, q = r["variants"]["torch-fp32"], r["variants"]["gguf-q8_0"]
    assert (t["accuracy"], q["accuracy"]) == (1.0, 0.95)
    assert t["accuracy_ci"] == [0.8389, 1.0] and q["accuracy_ci"] == [0.7639, 0.9911]  # Wilson 20/20, 19/20
    assert (t["mcnemar_p"], q["mcnemar_p"]) == (1.0, 1.0)  # one discordant pair: no evidence of a difference
    assert (t["greedy_identical"], q["greedy_identical"]) == (1.0, 0.95)
    assert q["first_departing_step"] == {"1": 1}
    assert set(bench_report.KEYS) <= set(q)
    assert (q["kl_divergence"], q["top1_agreement"], q["size_bytes"]) == (0.002, 0.99, 100)
    # the smaller file whose answers do not differ significantly ships
    assert r["verdict"].startswith("Ship gguf-q8_0: the smallest file (0.0 MB)")


def test_a_variant_that_loses_many_answers_is_not_shipped():
    right = [p["answer"] for p in HAND]
    broken = ["0"] * 8 + right[8:]  # 8 answers lost, none gained: p = 2 / 2^8
    results = {"torch-fp32": variant_result(right, size=400), "gguf-q4_k_m": variant_result(broken, kl=0.3, size=50)}
    r = bench_report.summarise(HAND, results, "torch-fp32", ["torch-fp32", "gguf-q4_k_m"])
    assert r["variants"]["gguf-q4_k_m"]["mcnemar_p"] == round(2 / 256, 6)
    assert r["verdict"].startswith("Ship torch-fp32:")
    assert "gguf-q4_k_m loses significantly: 60.0% against 100.0% (McNemar p = 0.00781" in r["verdict"]


def test_a_probe_form_far_below_its_originals_is_a_finding():
    problems = [{**p, "id": f"{p['id']}#{form}", "form": form, "probe_of": p["id"]}
                for p in HAND[:10] for form in ("original", "noop")]
    answers = [p["answer"] if p["form"] == "original" or i % 4 == 1 else "0" for i, p in enumerate(problems)]
    results = {"torch-fp32": variant_result(answers)}
    results["torch-fp32"]["greedy"] = results["torch-fp32"]["greedy"][:20]
    r = bench_report.summarise(problems, results, "torch-fp32", ["torch-fp32"])
    forms = r["variants"]["torch-fp32"]["by_form"]
    assert forms["noop"] == {"accuracy": 0.5, "n": 10, "original_accuracy": 1.0}
    assert ("Finding: on the noop probes (one irrelevant sentence with a number added) torch-fp32 answers "
            "50.0% of 10 against 100.0% for the same problems as written.") in r["verdict"]


def test_the_pareto_front_holds_the_points_nothing_beats_on_both():
    points = [(10, 80), (50, 80), (40, 90), (5, 95), (30, 70)]  # (tokens/s, accuracy)
    assert bench_report.pareto_front(points) == [1, 2, 3]


@pytest.fixture(scope="module")
def tiny_variants(tmp_path_factory):
    """A tiny random Llama with its gguf-q8_0 variant (and the f16 it is quantized from)."""
    from tiny_models import build_tiny_llama
    from tracetutor.export.build import write_variant

    d = build_tiny_llama(tmp_path_factory.mktemp("bench") / "tiny")
    write_variant(d, "gguf-q8_0")
    return d


def test_one_run_gives_every_figure_per_variant_and_writes_the_report(tiny_variants, tmp_path, capsys):
    from tracetutor.apps.bench import HANDWRITTEN

    out = tmp_path / "out"
    code = main(["bench", str(tiny_variants), "--variants", "gguf-q8_0", "--problems", str(HANDWRITTEN),
                 "--limit", "3", "--samples", "2", "--json", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["variants"]) == ["torch-fp32", "gguf-q8_0"]  # torch runs first as the reference
    t, q = report["variants"]["torch-fp32"], report["variants"]["gguf-q8_0"]
    for r in (t, q):
        assert set(bench_report.KEYS) <= set(r) and r["n"] == 3 and r["samples"] == 2
        assert r["tokens_per_s"] > 0 and r["ttft_s"] > 0 and r["teacher_forced_traces"] == 3
    assert (t["kl_divergence"], t["top1_agreement"], t["greedy_identical"], t["mcnemar_p"]) == (0.0, 1.0, 1.0, 1.0)
    # teacher-forced KL and top-1 over the same reference traces as export's parity check measures them
    from tracetutor.export.parity import logit_parity
    from tracetutor.runtime import load
    from tracetutor.trace import Trace, render_completion

    ref, var = load(tiny_variants).backend, load(tiny_variants, "gguf-q8_0").backend
    seqs = []
    for p in read_problems(HANDWRITTEN, limit=3):
        prompt = ref.encode_prompt(p["question"])
        seqs.append((prompt + ref.tokenize(render_completion(Trace.from_dict(p))) + [ref.eos_id], len(prompt)))
    expected = logit_parity(ref, var, seqs)
    assert q["kl_divergence"] == pytest.approx(expected["mean_kl"], rel=1e-4) and q["kl_divergence"] > 0
    assert q["top1_agreement"] == pytest.approx(expected["top1_agreement"], abs=1e-6)
    gguf = next(tiny_variants.glob("*-q8_0.gguf"))
    assert q["size_bytes"] == gguf.stat().st_size
    assert t["size_bytes"] == (tiny_variants / "model.safetensors").stat().st_size
    # each variant's memory is its own process's: llama.cpp never counts torch's
    assert 0 < q["peak_rss_bytes"] < t["peak_rss_bytes"]
    assert json.loads((out / "bench.json").read_text()) == report
    text = (out / "report.md").read_text()
    assert "## Verdict" in text and report["verdict"] in text and "| gguf-q8_0 |" in text
    assert {p.name for p in out.glob("*.png")} == {"accuracy_vs_size.png", "accuracy_vs_speed.png",
                                                   "accuracy_by_difficulty.png", "kl_by_variant.png"}


def test_a_variant_not_on_disk_is_one_line_before_any_model_loads(tiny_variants, capsys):
    from tracetutor.apps.bench import HANDWRITTEN

    assert main(["bench", str(tiny_variants), "--variants", "onnx-int4", "--problems", str(HANDWRITTEN)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tracetutor: error: variant 'onnx-int4' is not in") and len(err.splitlines()) == 1


def test_samples_below_one_are_refused(tiny_variants, capsys):
    assert main(["bench", str(tiny_variants), "--samples", "0"]) == 2
    assert capsys.readouterr().err == "tracetutor: error: --samples must be an integer of at least 1, got 0\n"


def test_probes_are_reported_per_form_beside_their_originals(tiny_variants, tmp_path, capsys):
    from tracetutor.trace import save_traces
    from tracetutor.train.curriculum import synth_traces

    save_traces(tiny_variants / "data" / "heldout.jsonl", synth_traces(11, seed=2))  # one of every family
    out = tmp_path / "out"
    assert main(["bench", str(tiny_variants), "--variants", "gguf-q8_0", "--problems", "probes", "--limit", "4",
                 "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problem_set"] == "probes" and report["n"] > 4
    for r in report["variants"].values():
        assert r["by_form"]["original"]["n"] == 4 and {"symbolic", "noop"} <= set(r["by_form"])
        assert sum(f["n"] for f in r["by_form"].values()) == report["n"]
    assert "## Robustness probes" in (out / "report.md").read_text() and (out / "accuracy_by_form.png").is_file()
