import os
import shutil

import pytest

torch = pytest.importorskip("torch")

from tracetutor.recipe import load_recipe
from tracetutor.train.dataset import IGNORE, curriculum_order, encode_example
from tracetutor.train.tokenizer import load_tokenizer
from tracetutor.train.trainer import train
from tracetutor.trace import load_traces


def copy_run(recipe, tmp_path):
    """A copy of a trained run (recipe, data, tokenizer, checkpoints, model) under tmp_path."""
    root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, root)
    return load_recipe(root / "micro.toml")


def checkpoint_steps(recipe) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (recipe.dir / "checkpoints").glob("checkpoint-*"))


def assert_same_weights(a_dir, b_dir):
    from safetensors.torch import load_file

    a, b = load_file(a_dir / "model.safetensors"), load_file(b_dir / "model.safetensors")
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_micro_model_trains_and_its_loss_falls(trained_micro):
    recipe, metrics = trained_micro
    curve = [p["loss"] for p in metrics["loss_curve"]]
    assert len(curve) >= 5
    first, last = sum(curve[:3]) / 3, sum(curve[-3:]) / 3
    assert last < 0.7 * first, f"loss went from {first:.3f} to {last:.3f}"
    assert metrics["tokens"] > 0 and metrics["tokens_per_s"] > 0
    assert (recipe.dir / "model.safetensors").is_file() and (recipe.dir / "tokenizer.json").is_file()


def test_loss_is_on_the_assistant_turn_only(trained_micro):
    recipe, _ = trained_micro
    tok = load_tokenizer(recipe.dir)
    trace = load_traces(recipe.dir / "data" / "train.jsonl")[0]
    for mode in ("traces", "answers"):
        e = encode_example(tok, trace, mode, 512)
        target = [t for t, lab in zip(e["input_ids"], e["labels"]) if lab != IGNORE]
        text = tok.decode(target, skip_special_tokens=False)
        assert text.endswith("<|end|>")
        assert trace.question not in text
        assert ("Step 1:" in text) == (mode == "traces") and f"Answer: {trace.answer}" in text


def test_curriculum_runs_easy_to_hard(trained_micro):
    recipe, _ = trained_micro
    traces = load_traces(recipe.dir / "data" / "train.jsonl")
    batches = curriculum_order(traces, recipe.train.stages, recipe.train.batch_size, seed=0)
    n_first = recipe.train.stages[0].examples // recipe.train.batch_size
    first = [traces[i].difficulty for b in batches[:n_first] for i in b]
    later = [traces[i].difficulty for b in batches[n_first:] for i in b]
    assert set(first) == {1}
    assert later.count(2) >= later.count(1) > 0  # stage two mixes in earlier levels
    assert sum(len(b) for b in batches) == recipe.train.total_examples


def test_family_weights_change_a_familys_share(trained_micro):
    recipe, _ = trained_micro
    traces = load_traces(recipe.dir / "data" / "train.jsonl")
    stages, bs = recipe.train.stages, recipe.train.batch_size

    def share(weights, family):
        drawn = [traces[i].family for b in curriculum_order(traces, stages, bs, 0, family_weights=weights) for i in b]
        assert len(drawn) == recipe.train.total_examples
        return drawn.count(family) / len(drawn)

    family = traces[0].family
    plain, tripled = share(None, family), share({family: 3.0}, family)
    # weight w turns a share p into w p / (w p + 1 - p)
    assert tripled == pytest.approx(3 * plain / (3 * plain + 1 - plain), abs=0.02)
    with pytest.raises(ValueError, match=rf"family_weights.*sudoku \(the training traces' families: .*{family}"):
        curriculum_order(traces, stages, bs, 0, family_weights={"sudoku": 2.0})


def test_resume_continues_from_the_checkpoint_to_the_same_weights(trained_micro, tmp_path):
    from safetensors.torch import load_file

    recipe, metrics = trained_micro
    done = load_file(recipe.dir / "model.safetensors")
    # a copy of the run, cut short after its second checkpoint
    copy_root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, copy_root)
    cut = load_recipe(copy_root / "micro.toml")
    steps = sorted(int(p.name.split("-")[1]) for p in (cut.dir / "checkpoints").glob("checkpoint-*"))
    (cut.dir / "model.safetensors").unlink()
    shutil.rmtree(cut.dir / "checkpoints" / f"checkpoint-{steps[-1]}")
    resumed = train(cut, resume=True, progress=False)
    assert resumed["resumed"] and resumed["steps"] == metrics["steps"]
    again = load_file(cut.dir / "model.safetensors")
    for name, tensor in done.items():
        torch.testing.assert_close(again[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def cut_short(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damaged, damage, resume_with", [
    ("model.safetensors", cut_short, "train"),
    ("trainer_state.json", lambda path: path.unlink(), "prepare_model"),  # killed before it was written
    ("optimizer.pt", cut_short, "prepare_model"),
])
def test_resume_passes_over_a_damaged_checkpoint_to_the_last_complete_one(trained_micro, tmp_path, capsys,
                                                                          damaged, damage, resume_with):
    from tracetutor.pipeline import prepare_model

    recipe, metrics = trained_micro
    run = copy_run(recipe, tmp_path)
    before, newest = checkpoint_steps(run)
    (run.dir / "model.safetensors").unlink()
    damage(run.dir / "checkpoints" / f"checkpoint-{newest}" / damaged)
    resumed = train(run, resume=True, progress=False) if resume_with == "train" else prepare_model(run)
    out = capsys.readouterr().out
    assert f"checkpoint-{newest} is incomplete ({damaged} is" in out
    assert f"resuming from {run.dir / 'checkpoints' / f'checkpoint-{before}'} (step {before} of" in out
    assert resumed["resumed"] and resumed["steps"] == metrics["steps"]
    assert_same_weights(recipe.dir, run.dir)
    # the run saved the newest checkpoint again, whole this time
    from tracetutor.train.trainer import checkpoint_problem

    assert checkpoint_steps(run) == [before, newest]
    assert checkpoint_problem(run.dir / "checkpoints" / f"checkpoint-{newest}") is None


def test_a_resumed_runs_metrics_span_all_its_sessions(trained_micro, tmp_path):
    recipe, metrics = trained_micro
    run = copy_run(recipe, tmp_path)
    before, newest = checkpoint_steps(run)
    shutil.rmtree(run.dir / "checkpoints" / f"checkpoint-{newest}")
    resumed = train(run, resume=True, progress=False)
    # the loss curve starts at step 1, not at the checkpoint, and the token count is the run's
    assert [p["step"] for p in resumed["loss_curve"]] == [p["step"] for p in metrics["loss_curve"]]
    assert resumed["loss_curve"][0]["step"] == 1
    for a, b in zip(resumed["loss_curve"], metrics["loss_curve"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=2e-3) and a["tokens"] == b["tokens"]
    assert resumed["tokens"] == metrics["tokens"] and resumed["final_loss"] == pytest.approx(metrics["final_loss"], abs=2e-3)
    # the seconds count the first session's too: two thirds of the steps were done there
    assert resumed["train_seconds"] > 0.5 * metrics["train_seconds"]
    # train_seconds is rounded to 0.1 s
    assert resumed["tokens"] / (resumed["train_seconds"] + 0.05) <= resumed["tokens_per_s"]
    assert resumed["tokens_per_s"] <= resumed["tokens"] / (resumed["train_seconds"] - 0.05)


def test_resume_on_a_finished_run_reports_its_metrics(trained_micro, tmp_path, capsys):
    from tracetutor.pipeline import prepare_model

    recipe, metrics = trained_micro
    run = copy_run(recipe, tmp_path)
    written = (run.dir / "train_metrics.json").read_bytes()
    weights = (run.dir / "model.safetensors").stat().st_mtime_ns
    assert prepare_model(run, resume=True) == metrics
    assert "already trained" in capsys.readouterr().out
    assert (run.dir / "train_metrics.json").read_bytes() == written
    assert (run.dir / "model.safetensors").stat().st_mtime_ns == weights
    # train() itself, resuming from the final checkpoint, trains no step and reports the whole run
    again = train(run, resume=True, progress=False)
    assert again["steps"] == metrics["steps"] and again["tokens"] == metrics["tokens"]
    assert again["loss_curve"] == metrics["loss_curve"] and again["final_loss"] == metrics["final_loss"]
    assert again["train_seconds"] == pytest.approx(metrics["train_seconds"], rel=0.3, abs=1.0)
    assert_same_weights(recipe.dir, run.dir)


def test_progress_bar_shows_no_loss_until_one_is_known():
    from transformers import TrainerState

    from tracetutor.train.trainer import _callbacks

    _, Bar, _ = _callbacks()
    fresh = TrainerState(max_steps=10)
    bar = Bar()
    bar.on_train_begin(None, fresh, None)
    fresh.global_step, fresh.num_input_tokens_seen = 1, 500
    bar.on_step_end(None, fresh, None)  # the first step ends before its loss is logged
    assert "loss" not in bar.bar.postfix and "tok_s" in bar.bar.postfix
    bar.on_log(None, fresh, None, logs={"loss": 5.4321})
    fresh.global_step = 2
    bar.on_step_end(None, fresh, None)
    assert "loss=5.432" in bar.bar.postfix
    bar.on_train_end(None, fresh, None)
    # a resumed session shows the run's last logged loss from its first step
    resumed = TrainerState(max_steps=10, global_step=4, log_history=[{"loss": 4.0, "step": 3}, {"loss": 3.25, "step": 4}])
    bar = Bar()
    bar.on_train_begin(None, resumed, None)
    resumed.global_step = 5
    bar.on_step_end(None, resumed, None)
    assert "loss=3.250" in bar.bar.postfix and "nan" not in bar.bar.postfix
    bar.on_train_end(None, resumed, None)


def test_a_max_len_shorter_than_a_trace_is_an_error_naming_the_field(trained_micro, tmp_path):
    from tracetutor.recipe import RecipeError

    recipe, _ = trained_micro
    tok = load_tokenizer(recipe.dir / "tokenizer")
    lengths = sorted(len(encode_example(tok, t, "traces", 1 << 30)["input_ids"])
                     for t in load_traces(recipe.dir / "data" / "train.jsonl"))
    short = lengths[len(lengths) // 2]  # half the traces are longer: the curriculum draws some of them
    run = copy_run(recipe, tmp_path)
    toml = run.path
    toml.write_text(toml.read_text().replace("max_len = 256", f"max_len = {short}"))
    with pytest.raises(RecipeError, match=rf"micro\.toml: model\.max_len = {short} is too short for \d+ of "
                                          rf"the \d+ training traces drawn from .*: the longest is (\d+) tokens") as e:
        train(load_recipe(toml), progress=False)
    assert short < int(e.value.args[0].split("the longest is ")[1].split()[0]) <= lengths[-1]


def test_same_seed_same_model(trained_micro, tmp_path):
    from safetensors.torch import load_file

    recipe, metrics = trained_micro
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(recipe.path, root)
    shutil.copytree(recipe.dir / "data", root / "micro" / "data")
    shutil.copytree(recipe.dir / "tokenizer", root / "micro" / "tokenizer")
    threads = torch.get_num_threads()
    torch.set_num_threads(metrics["threads_per_process"])  # another sum order rounds otherwise
    try:
        again = train(load_recipe(root / "micro.toml"), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert [p["loss"] for p in again["loss_curve"]] == [p["loss"] for p in metrics["loss_curve"]]
    a, b = load_file(recipe.dir / "model.safetensors"), load_file(root / "micro" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_pipeline_stages_redo_only_what_a_recipe_edit_affects(trained_micro, tmp_path, capsys):
    from tracetutor.recipe import RecipeError
    from tracetutor import pipeline

    recipe, metrics = trained_micro
    root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, root)
    same = load_recipe(root / "micro.toml")
    assert pipeline.prepare_model(same)["fingerprint"] == metrics["fingerprint"]
    assert "already trained" in capsys.readouterr().out

    # a new learning rate keeps data and tokenizer but not the model
    toml = root / "micro.toml"
    toml.write_text(toml.read_text().replace("learning_rate = 3e-3", "learning_rate = 1e-3"))
    edited = load_recipe(toml)
    assert pipeline.data_fingerprint(edited) == pipeline.data_fingerprint(same)
    assert pipeline.tokenizer_fingerprint(edited) == pipeline.tokenizer_fingerprint(same)
    assert pipeline.model_fingerprint(edited) != pipeline.model_fingerprint(same)
    # asking to resume another run's checkpoints is refused, naming the folder
    with pytest.raises(RecipeError, match="checkpoints.*--force"):
        pipeline.prepare_model(edited, resume=True)
    assert any((edited.dir / "checkpoints").glob("checkpoint-*"))  # nothing was deleted

    # a new vocabulary size retrains the tokenizer on the same data
    toml.write_text(toml.read_text().replace("vocab_size = 400", "vocab_size = 420"))
    edited = load_recipe(toml)
    before = (edited.dir / "tokenizer" / "tokenizer.json").read_bytes()
    pipeline.prepare_data(edited)
    assert "data:" not in capsys.readouterr().out  # the data did not change, so it is kept
    pipeline.prepare_tokenizer(edited)
    assert (edited.dir / "tokenizer" / "tokenizer.json").read_bytes() != before


def test_the_pipelines_bench_answers_the_recipes_share_of_held_out(trained_micro, tmp_path, capsys):
    """bench.heldout limits the held-out benchmark to its first problems; changing it reruns the
    benchmark, never the training."""
    import json

    from tracetutor import pipeline

    recipe, metrics = trained_micro
    root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, root)
    toml = root / "micro.toml"
    toml.write_text(toml.read_text() + "\n[bench]\nheldout = 3\n")
    three = load_recipe(toml)
    assert pipeline.model_fingerprint(three) == metrics["fingerprint"]
    bench = pipeline.bench_heldout(three, ["torch-fp32"], check=False)
    heldout = [json.loads(line) for line in (three.dir / "data" / "heldout.jsonl").read_text().splitlines()]
    assert bench["n"] == bench["variants"]["torch-fp32"]["n"] == 3 < len(heldout)
    assert {w["question"] for w in bench["variants"]["torch-fp32"]["wrong"]} <= {p["question"] for p in heldout[:3]}
    pipeline.bench_heldout(three, ["torch-fp32"], check=False)
    assert "held-out results for this model" in capsys.readouterr().out  # same limit: kept
    toml.write_text(toml.read_text().replace("heldout = 3", "heldout = 4"))
    assert pipeline.bench_heldout(load_recipe(toml), ["torch-fp32"], check=False)["n"] == 4


def test_report_reads_a_hand_written_data_meta(trained_micro, tmp_path):
    import json

    from tracetutor.apps.report import write_report

    recipe, metrics = trained_micro
    root = tmp_path / "models"
    shutil.copytree(recipe.dir.parent, root)
    copy = load_recipe(root / "micro.toml")
    (copy.dir / "data" / "meta.json").write_text(json.dumps({"note": "made by hand"}))
    n_train = len(load_traces(copy.dir / "data" / "train.jsonl"))
    text = write_report(copy).read_text()
    assert f"{n_train} training and" in text and f"{metrics['parameters'] / 1e6:.2f}M parameters" in text


def test_data_parallel_run_takes_the_same_examples_learns_and_resumes(trained_micro, tmp_path):
    """Two torchrun processes (gloo on the CPU) split every batch: the same optimization."""
    recipe, metrics = trained_micro
    root = tmp_path / "models"
    root.mkdir()
    toml = root / "micro.toml"
    toml.write_text(recipe.path.read_text().replace("processes = 1", "processes = 2"))
    shutil.copytree(recipe.dir / "data", root / "micro" / "data")
    shutil.copytree(recipe.dir / "tokenizer", root / "micro" / "tokenizer")
    ddp = train(load_recipe(toml), progress=False)
    # each process takes its share of the cores unless OMP_NUM_THREADS says otherwise
    cores = len(os.sched_getaffinity(0))
    assert ddp["processes"] == 2 and ddp["threads_per_process"] == int(os.environ.get("OMP_NUM_THREADS", max(1, cores // 2)))
    assert (ddp["steps"], ddp["examples"], ddp["tokens"]) == (metrics["steps"], metrics["examples"], metrics["tokens"])
    assert ddp["loss_curve"][-1]["loss"] < 0.75 * ddp["loss_curve"][0]["loss"]
    # gradients averaged over both halves of each batch give the single process's run
    assert ddp["final_loss"] == pytest.approx(metrics["final_loss"], rel=0.01)
    assert (root / "micro" / "model.safetensors").is_file()

    # killed before process 1 saved its RNG state in the last checkpoint: resumed from the one before
    done = tmp_path / "done"
    shutil.copytree(root / "micro", done)
    (root / "micro" / "model.safetensors").unlink()
    steps = sorted(int(p.name.split("-")[1]) for p in (root / "micro" / "checkpoints").glob("checkpoint-*"))
    (root / "micro" / "checkpoints" / f"checkpoint-{steps[-1]}" / "rng_state_1.pth").unlink()
    resumed = train(load_recipe(toml), resume=True, progress=False)
    assert resumed["resumed"] and (resumed["steps"], resumed["tokens"]) == (ddp["steps"], ddp["tokens"])
    assert [p["step"] for p in resumed["loss_curve"]] == [p["step"] for p in ddp["loss_curve"]]
    assert_same_weights(done, root / "micro")


def test_a_new_generator_version_redoes_the_data_and_all_after_it(monkeypatch):
    from tracetutor import pipeline
    from tracetutor.train import curriculum as synth

    recipe = load_recipe("micro")
    before = [pipeline.data_fingerprint(recipe), pipeline.tokenizer_fingerprint(recipe), pipeline.model_fingerprint(recipe)]
    monkeypatch.setattr(synth, "VERSION", synth.VERSION + 1)
    after = [pipeline.data_fingerprint(recipe), pipeline.tokenizer_fingerprint(recipe), pipeline.model_fingerprint(recipe)]
    assert all(a != b for a, b in zip(before, after))


def test_a_recipe_trains_on_a_mix_of_sources_each_drawn_by_its_weight(tmp_path, capsys):
    """Imported traces join the synthetic ones; a source's weight scales its share of the draws;
    a source's copy of a held-out question is dropped; editing the file redoes the data."""
    from conftest import SHIPPED

    from tracetutor.pipeline import data_fingerprint, prepare_data
    from tracetutor.train.curriculum import synth_traces
    from tracetutor.trace import save_traces

    models = tmp_path / "models"
    models.mkdir()
    toml = models / "micro.toml"
    toml.write_text((SHIPPED / "micro.toml").read_text().replace("[tokenizer]", """[[data.sources]]
name = "real"
path = "real.jsonl"
weight = 3.0

[tokenizer]"""))
    recipe = load_recipe(toml)
    imported = synth_traces(100, seed=99, levels=[1, 2])
    for t in imported:
        t.family = "real"
    save_traces(models / "real.jsonl", imported)
    before = data_fingerprint(recipe)
    data = prepare_data(recipe)
    held = {t.question for t in load_traces(data / "heldout.jsonl")}
    imported[0].question = sorted(held)[0]  # a held-out question among the imported ones
    heldout_copy = imported[0].question
    save_traces(models / "real.jsonl", imported)
    assert data_fingerprint(recipe) != before  # the file changed: the data is redone
    data = prepare_data(recipe)
    train_traces = load_traces(data / "train.jsonl")
    real = [t for t in train_traces if t.source == "real"]
    assert len(real) == 99 and heldout_copy not in {t.question for t in train_traces}
    assert "(400 synthetic, 99 from real)" in capsys.readouterr().out
    order = curriculum_order(train_traces, recipe.train.stages, recipe.train.batch_size, seed=0,
                             source_weights=recipe.data.weights)
    drawn = [train_traces[i].source for b in order for i in b]
    share, plain = drawn.count("real") / len(drawn), len(real) / len(train_traces)
    assert share == pytest.approx(3 * plain / (1 + 2 * plain), abs=0.03)  # 3x the odds of its plain share


def test_the_shuffled_ablation_takes_the_curriculums_examples_in_no_stage_order(trained_micro):
    recipe, _ = trained_micro
    traces = load_traces(recipe.dir / "data" / "train.jsonl")
    args = (traces, recipe.train.stages, recipe.train.batch_size, 0)
    ordered, shuffled = curriculum_order(*args), curriculum_order(*args, shuffled=True)
    assert sorted(i for b in shuffled for i in b) == sorted(i for b in ordered for i in b)
    levels = [traces[i].difficulty for b in shuffled for i in b]
    half = len(levels) // 2  # micro teaches level 1 first, then a quarter of all its examples are level 2
    assert levels[:half].count(2) > 0.15 * half and [traces[i].difficulty for b in ordered for i in b][:half].count(2) == 0
