"""Learning curves: the trainer keeps its weights every train.snapshot_every steps, and each
snapshot answers the held-out problems as the model it was."""

import json
import shutil

import pytest

torch = pytest.importorskip("torch")

from conftest import SHIPPED  # noqa: E402

RELEASE = SHIPPED / "release" / "tiny-tutor"


def test_snapshots_hold_the_weights_at_their_step(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from tracetutor.pipeline import prepare_data, prepare_model, prepare_tokenizer
    from tracetutor.recipe import load_recipe

    toml = tmp_path / "micro.toml"
    toml.write_text((SHIPPED / "micro.toml").read_text().replace("save_every = 10", "save_every = 10\nsnapshot_every = 10"))
    recipe = load_recipe(toml)
    prepare_data(recipe)
    prepare_tokenizer(recipe)
    metrics = prepare_model(recipe)
    snaps = sorted((recipe.dir / "checkpoints" / "curve").glob("step-*.safetensors"))
    assert [s.name for s in snaps] == ["step-000010.safetensors", "step-000020.safetensors", "step-000030.safetensors"]
    tokens = []
    for s in snaps:
        with safe_open(str(s), "pt") as f:
            tokens.append(int(f.metadata()["tokens"]))
    assert 0 < tokens[0] < tokens[1] < tokens[2] == metrics["tokens"]
    final = load_file(recipe.dir / "model.safetensors")
    last, first = load_file(snaps[-1]), load_file(snaps[0])
    for name, tensor in last.items():
        torch.testing.assert_close(tensor, final[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(first[n], last[n]) for n in last)


@pytest.fixture
def run_with_snapshots(tmp_path):
    """The shipped tiny-tutor as a run whose snapshots are, in order, its weights with noise
    (step 100), its own weights (step 200), and the model itself as the end (step 300)."""
    from safetensors.torch import load_file, save_file

    run = tmp_path / "tiny-tutor"
    shutil.copytree(RELEASE, run)
    weights = load_file(run / "model.safetensors")
    gen = torch.Generator().manual_seed(0)
    noisy = {n: t + 0.5 * t.std() * torch.randn(t.shape, generator=gen) for n, t in weights.items()}
    (run / "checkpoints" / "curve").mkdir(parents=True)
    for step, w in ((100, noisy), (200, weights)):
        save_file(w, run / "checkpoints" / "curve" / f"step-{step:06d}.safetensors",
                  metadata={"step": str(step), "tokens": str(step * 1000)})
    (run / "train_metrics.json").write_text(json.dumps({"steps": 300, "tokens": 300_000}))
    return run


def test_each_point_is_the_accuracy_of_its_own_weights(run_with_snapshots):
    from tracetutor.apps.curve import format_curve, measure_curve, write_curve

    curve = measure_curve(run_with_snapshots, limit=24, threads=2)
    points = curve["points"]
    assert [(p["step"], p["tokens"]) for p in points] == [(100, 100_000), (200, 200_000), (300, 300_000)]
    noisy, own, final = (p["accuracy"] for p in points)
    assert own == final >= 0.6, points  # the shipped model answers most held-out problems
    assert noisy < own - 0.3, points  # the noisy weights were loaded, not the model's own
    assert points[1]["accuracy_ci"][0] < own < points[1]["accuracy_ci"][1]
    png = write_curve(curve, run_with_snapshots)
    assert png.stat().st_size > 10_000
    assert json.loads((run_with_snapshots / "curve.json").read_text())["points"] == points
    assert format_curve(curve).count("\n") == 2 + len(points) - 1


def test_a_run_without_snapshots_is_one_line_naming_the_setting(tmp_path, capsys):
    from tracetutor.cli import main

    run = tmp_path / "tiny-tutor"
    shutil.copytree(RELEASE, run)
    assert main(["curve", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.snapshot_every" in err and str(run) in err


def test_compared_runs_are_paired_only_on_the_same_problems(tmp_path):
    from tracetutor.apps.curve import format_curve, write_curve

    def run(name, correct, digest="same"):
        acc = sum(correct) / len(correct)
        return {"model": name, "problems": f"{name}/data/heldout.jsonl", "problems_sha256": digest,
                "n": len(correct), "eval_curve": [],
                "points": [{"step": 10, "tokens": 1000, "accuracy": acc, "accuracy_ci": [0.0, 1.0],
                            "by_difficulty": {"1": acc}, "correct": correct}]}

    for name, correct, digest in (("a", [True] * 8 + [False] * 2, "same"), ("b", [False] * 10, "same"),
                                  ("c", [True] * 10, "other")):
        (tmp_path / name).mkdir()
        if name != "a":
            (tmp_path / name / "curve.json").write_text(json.dumps(run(name, correct, digest)))
    mine = run("a", [True] * 8 + [False] * 2)
    write_curve(mine, tmp_path / "a", [tmp_path / "b", tmp_path / "c", tmp_path / "missing"])
    compared = json.loads((tmp_path / "a" / "curve.json").read_text())["compared"]
    assert compared["b"] == {"accuracy": 0.0, "tokens": 1000, "mcnemar_p": round(2 / 256, 4)}  # 8 discordant, all one way
    assert compared["c"]["mcnemar_p"] is None and "missing" not in compared
    assert "McNemar p = 0.0078" in format_curve(mine)
