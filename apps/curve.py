"""Learning curves: held-out accuracy against training tokens.

A run whose recipe sets `train.snapshot_every` keeps its trained weights at those steps in
`checkpoints/curve/`. Each snapshot is loaded into the trained model in turn and answers the
held-out problems greedily, as `bench` does; the trained model is the curve's last point.
`curve.json` and `curve.png` go beside the model, with the curves of the recipes it is
compared with (`compare` in the recipe) on the same axes, so an ablation is read at equal
compute.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tracetutor.files import read_json, write_json

from .bench import load_problems, score
from tracetutor.trace import answers_match

from .stats import mcnemar_p, wilson

CURVE_DIR = Path("checkpoints") / "curve"  # where the trainer keeps the snapshots (train.trainer.CURVE)


def snapshots(model_dir: Path) -> list[Path]:
    return sorted((Path(model_dir) / CURVE_DIR).glob("step-*.safetensors"))


def _step(snap: Path) -> int:
    return int(snap.name.removeprefix("step-").removesuffix(".safetensors"))


def measure_curve(model_dir: Path, limit: int | None = None, threads: int | None = None) -> dict:
    """Held-out accuracy of every snapshot and of the trained model, by training tokens."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from tqdm.auto import tqdm

    from tracetutor.runtime.engine import Engine
    from tracetutor.runtime.torch_backend import TorchBackend

    model_dir = Path(model_dir)
    snaps = snapshots(model_dir)
    if not snaps:
        raise ValueError(f"{model_dir / CURVE_DIR}: no snapshots; set train.snapshot_every in the recipe and "
                         "retrain (tracetutor train MODEL --force)")
    metrics = read_json(model_dir / "train_metrics.json")
    path, problems = load_problems(model_dir, "heldout", limit)
    questions = [p["question"] for p in problems]
    backend = TorchBackend(model_dir, threads=threads, merge=False)  # a LoRA run's snapshots name its adapter
    engine = Engine(backend)
    final = {n: p.detach().clone() for n, p in backend.model.named_parameters()}
    if _step(snaps[-1]) == metrics["steps"]:
        snaps = snaps[:-1]  # the trained model is that point
    points = []
    bar = tqdm(snaps + [None], desc="curve", unit="point")
    for snap in bar:
        if snap is None:  # the trained model itself
            weights, step, tokens = final, metrics["steps"], metrics["tokens"]
        else:
            with safe_open(str(snap), "pt") as f:
                meta = f.metadata() or {}
            weights, step, tokens = load_file(str(snap)), int(meta["step"]), int(meta["tokens"])
        missing = set(weights) - set(final)
        if missing:
            raise ValueError(f"{snap}: holds weights the model does not have ({sorted(missing)[0]}, ...); "
                             "it belongs to another run")
        backend.model.load_state_dict(weights, strict=False)
        s = score(problems, outputs := engine.answer_batch(questions))
        low, high = wilson(s["correct"], s["n"])
        correct = [answers_match(o.answer, p["answer"]) for p, o in zip(problems, outputs)]
        points.append({"step": step, "tokens": tokens, "accuracy": s["accuracy"], "accuracy_ci": [low, high],
                       "by_difficulty": {k: v["accuracy"] for k, v in s["by_difficulty"].items()},
                       "correct": correct})
        bar.write(f"step {step:>6}  {tokens / 1e6:6.2f}M tokens  accuracy {s['accuracy']:.1%} [{low:.1%}-{high:.1%}]")
    digest = hashlib.sha256(json.dumps([(p["question"], p["answer"]) for p in problems]).encode()).hexdigest()
    return {"model": model_dir.name, "problems": str(path), "problems_sha256": digest, "n": len(problems),
            "points": points,
            "eval_curve": _eval_tokens(metrics)}


def _eval_tokens(metrics: dict) -> list[dict]:
    """The held-out loss logged during training, with the tokens seen at each of its steps
    (interpolated from the training log)."""
    import numpy as np

    log = metrics.get("loss_curve") or []
    evals = metrics.get("eval_curve") or []
    if not log or not evals:
        return []
    steps, tokens = [0] + [e["step"] for e in log], [0] + [e["tokens"] for e in log]
    return [{"step": e["step"], "tokens": int(np.interp(e["step"], steps, tokens)), "loss": e["loss"]} for e in evals]


def write_curve(curve: dict, model_dir: Path, compare: list[Path] = ()) -> Path:
    """curve.json and curve.png (accuracy, and held-out loss where logged, against tokens)
    beside the model, with each compared run's curve.json on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model_dir = Path(model_dir)
    runs = {curve["model"]: curve}
    for other in compare:
        if (Path(other) / "curve.json").is_file():
            runs[Path(other).name] = read_json(Path(other) / "curve.json")
    curve["compared"] = {name: _paired(curve, run) for name, run in runs.items() if name != curve["model"]}
    write_json(model_dir / "curve.json", curve)
    with_loss = any(r.get("eval_curve") for r in runs.values())
    fig, axes = plt.subplots(1, 2 if with_loss else 1, figsize=(11 if with_loss else 6, 4), squeeze=False)
    acc = axes[0][0]
    for name, run in runs.items():
        pts = run["points"]
        x = [p["tokens"] / 1e6 for p in pts]
        line, = acc.plot(x, [100 * p["accuracy"] for p in pts], marker="o", label=f"{name} (n={run['n']})")
        acc.fill_between(x, [100 * p["accuracy_ci"][0] for p in pts], [100 * p["accuracy_ci"][1] for p in pts],
                         color=line.get_color(), alpha=0.15)
    acc.set(xlabel="training tokens (millions)", ylabel="held-out accuracy, greedy (%)", ylim=(0, 100),
            title="accuracy against training tokens")
    acc.grid(alpha=0.3)
    acc.legend()
    if with_loss:
        loss = axes[0][1]
        for name, run in runs.items():
            if run.get("eval_curve"):
                loss.plot([e["tokens"] / 1e6 for e in run["eval_curve"]], [e["loss"] for e in run["eval_curve"]],
                          label=name)
        loss.set(xlabel="training tokens (millions)", ylabel="held-out loss", yscale="log",
                 title="held-out loss (64 traces)")
        loss.grid(alpha=0.3)
        loss.legend()
    fig.tight_layout()
    out = model_dir / "curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _paired(curve: dict, other: dict) -> dict:
    """The trained models side by side: accuracy, and McNemar's p on the same problems."""
    mine, theirs = curve["points"][-1], other["points"][-1]
    same = other.get("problems_sha256") == curve["problems_sha256"]
    return {"accuracy": theirs["accuracy"], "tokens": theirs["tokens"],
            "mcnemar_p": round(mcnemar_p(mine["correct"], theirs["correct"]), 4) if same else None}


def format_curve(curve: dict) -> str:
    rows = ["| step | tokens | accuracy [95% CI] | " + " | ".join(f"level {k}" for k in
                                                                  curve["points"][-1]["by_difficulty"]) + " |"]
    rows.append("|" + "---|" * (3 + len(curve["points"][-1]["by_difficulty"])))
    for p in curve["points"]:
        low, high = p["accuracy_ci"]
        levels = " | ".join(f"{100 * a:.0f}%" if a is not None else "-" for a in p["by_difficulty"].values())
        rows.append(f"| {p['step']} | {p['tokens'] / 1e6:.2f}M | {100 * p['accuracy']:.1f}% "
                    f"[{100 * low:.1f}-{100 * high:.1f}] | {levels} |")
    final = curve["points"][-1]
    for name, c in (curve.get("compared") or {}).items():
        p = f", McNemar p = {c['mcnemar_p']:.3g} on the same problems" if c["mcnemar_p"] is not None else ""
        rows.append(f"\nTrained: {curve['model']} {100 * final['accuracy']:.1f}% after {final['tokens'] / 1e6:.2f}M "
                    f"tokens; {name} {100 * c['accuracy']:.1f}% after {c['tokens'] / 1e6:.2f}M{p}.")
    return "\n".join(rows)


def curve(model, limit: int | None = None, threads: int | None = None) -> tuple[dict, Path]:
    """measure_curve and write_curve for a MODEL argument (recipe name, file or folder)."""
    from tracetutor.recipe import load_recipe, resolve_model

    model_dir, recipe = resolve_model(model)
    result = measure_curve(model_dir, limit, threads)
    here = recipe.path.parent if recipe and recipe.path else None
    compare = [load_recipe(here / f"{name}.toml" if here else name).dir for name in (recipe.compare if recipe else [])]
    return result, write_curve(result, model_dir, compare)
