"""The recipe report: models/<name>/report.md with tables and plots.

Reads what the stages left on disk (data/meta.json, train_metrics.json, bench.json) and,
for each recipe named in `compare`, that recipe's bench.json, so an ablation sits beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tracetutor.recipe import Recipe, load_recipe


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _plot_loss(metrics: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = metrics.get("loss_curve") or []
    if not curve:
        return
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([p["tokens"] / 1e6 for p in curve], [p["loss"] for p in curve], lw=1.2)
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("loss (assistant turn)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title(f"{metrics['recipe']}: training loss")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _plot_levels(benches: dict[str, dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({lv for b in benches.values() for lv in b["by_difficulty"]})
    if not levels:
        return
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / len(benches)
    for k, (name, b) in enumerate(benches.items()):
        xs = [i + k * width for i in range(len(levels))]
        ys = [100 * (b["by_difficulty"].get(lv, {}).get("accuracy") or 0) for lv in levels]
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks([i + width * (len(benches) - 1) / 2 for i in range(len(levels))])
    ax.set_xticklabels([f"level {lv}" for lv in levels])
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _variants_section(export: dict, bench: dict | None, d: Path) -> list[str]:
    """Quantized versus full precision: size, parity with torch and held-out accuracy."""
    acc = (bench or {}).get("variants", {})
    lines = ["## Exported variants", "",
             "Each variant checked against torch fp32: tokenizer parity on the held-out questions, special "
             "tokens and a stress text; greedy tokens on held-out prompts (near-ties: torch's two best logits "
             "within 0.1); mean KL(torch ‖ variant) and top-1 agreement teacher-forced over reference traces.", "",
             "| variant | size | held-out accuracy | tokenizer | greedy identical | mean KL | top-1 | tensor/op types |",
             "|---|---|---|---|---|---|---|---|"]
    if "torch-fp32" in acc:
        size = sum(f.stat().st_size for f in d.glob("*.safetensors")) / 1e6
        lines.append(f"| torch-fp32 | {size:.1f} MB | **{_pct(acc['torch-fp32']['accuracy'])}** | – | – | – | – | f32 |")
    points = []
    for v, e in export["variants"].items():
        f, g, lg = e["file"], e["greedy"], e["logits"]
        types = f.get("tensor_types") or f.get("ops") or {}
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(types.items(), key=lambda kv: -kv[1])[:3])
        a = acc.get(v, {}).get("accuracy")
        if a is not None:
            points.append((v, f["bytes"] / 1e6, a))
        lines.append(f"| {v} | {f['bytes'] / 1e6:.1f} MB | **{_pct(a)}** | {_pct(e['tokenizer']['rate'])} | "
                     f"{g['identical']}/{g['prompts']}" + (f" ({g['near_ties']} near-ties)" if g.get("near_ties") else "")
                     + f" | {lg['mean_kl']:.2e} | {_pct(lg['top1_agreement'])} | {kinds} |")
    lines.append("")
    if points:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.2))
        for k, (v, mb, a) in enumerate(sorted(points, key=lambda p: p[1])):
            ax.scatter(mb, 100 * a)
            ax.annotate(v, (mb, 100 * a), fontsize=7, xytext=(4, 8 if k % 2 else -12), textcoords="offset points")
        ys = [100 * a for _, _, a in points]
        ax.set_ylim(min(ys) - 5, max(ys) + 5)  # quantization shows as points off the torch line
        if "torch-fp32" in acc:
            ax.axhline(100 * acc["torch-fp32"]["accuracy"], ls="--", lw=1, color="gray", label="torch fp32")
            ax.legend(fontsize=8)
        ax.set_xlabel("file size (MB)")
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(d / "variants.png", dpi=120)
        plt.close(fig)
        lines += ["![accuracy against size](variants.png)", ""]
    return lines


def _data_line(meta: dict, data_dir: Path) -> str:
    """The data section's sentence; a meta file written by hand may lack counts or settings."""
    def count(key, name):
        if key in meta:
            return meta[key]
        path = data_dir / name
        return sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else "?"

    config = meta.get("config") or {}
    settings = ", ".join(f"{k} {config[k]}" for k in ("seed", "levels") if k in config)
    return (f"{count('n_train', 'train.jsonl')} training and {count('n_heldout', 'heldout.jsonl')} held-out "
            f"synthetic traces{f' ({settings})' if settings else ''}, every one verified; "
            "the held-out split shares no question with training.")


def write_report(recipe: Recipe) -> Path:
    d = recipe.dir
    meta, metrics, bench = _read(d / "data" / "meta.json"), _read(d / "train_metrics.json"), _read(d / "bench.json")
    lines = [f"# {recipe.name}", "", recipe.description.strip(), ""]
    m = recipe.model
    lines += ["## Model", "",
              f"Llama architecture, {m.num_layers} layers, width {m.hidden_size}, MLP {m.intermediate_size}, "
              f"{m.num_heads} heads ({m.num_kv_heads} key/value), context {m.max_len}"
              + (f", **{metrics['parameters'] / 1e6:.2f}M parameters**" if metrics else "") + ".", ""]
    if meta:
        lines += ["## Data", "", _data_line(meta, d / "data"), ""]
    if metrics:
        lines += ["## Training", "",
                  "| mode | steps | tokens | time | tokens/s | precision | device | processes | final loss |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {metrics['mode']} | {metrics['steps']} | {metrics['tokens']:,} | "
                  f"{metrics['train_seconds'] / 60:.1f} min | {metrics['tokens_per_s']:,.0f} | "
                  f"{metrics['precision']} | {metrics['device']} | "
                  f"{metrics.get('processes', 1)} x {metrics.get('threads_per_process', '?')} thread(s) | "
                  f"{metrics['final_loss']:.4f} |", ""]
        _plot_loss(metrics, d / "loss.png")
        if (d / "loss.png").is_file():
            lines += ["![training loss](loss.png)", ""]
    if bench:
        benches = {}
        for variant, r in bench["variants"].items():
            benches[f"{recipe.name} ({variant})"] = r
        for other in getattr(recipe, "compare", []) or []:
            try:
                o = load_recipe(Path(recipe.path).parent / f"{other}.toml") if recipe.path else load_recipe(other)
            except ValueError:
                continue
            ob = _read(o.dir / "bench.json")
            if ob:
                for variant, r in ob["variants"].items():
                    benches[f"{other} ({variant})"] = r
        levels = sorted({lv for r in benches.values() for lv in r["by_difficulty"]})
        lines += ["## Held-out accuracy", "", f"{bench['n']} problems from `{Path(bench['problems']).name}`, "
                  "greedy decoding (*problems*: how many of them each row answered, the first ones), answers "
                  "compared after canonicalisation; *steps ok* is the share of "
                  "generated steps whose arithmetic verifies. *Checked* is the same model with checked "
                  "arithmetic (`tracetutor chat --check`): the result of a false step is replaced by its "
                  "exact value and the model goes on from there; the model still picks every number and "
                  "operation.", "",
                  "| model | problems | accuracy | checked | steps ok | " + " | ".join(f"level {lv}" for lv in levels)
                  + " | checked by level |",
                  "|---|---|---|---|---|" + "---|" * len(levels) + "---|"]
        for name, r in benches.items():
            c = r.get("checked") or {}
            by_level = " / ".join(_pct(c["by_difficulty"].get(lv, {}).get("accuracy")) for lv in levels) if c else "–"
            lines.append(f"| {name} | {r['n']} | **{_pct(r['accuracy'])}** | {_pct(c.get('accuracy'))} | "
                         f"{_pct(r['step_validity'])} | "
                         + " | ".join(_pct(r["by_difficulty"].get(lv, {}).get("accuracy")) for lv in levels)
                         + f" | {by_level} |")
        lines.append("")
        torch_checked = bench["variants"].get("torch-fp32", {}).get("checked")
        if torch_checked:
            benches[f"{recipe.name} (torch-fp32, checked)"] = torch_checked
        _plot_levels(benches, d / "accuracy_by_level.png")
        if (d / "accuracy_by_level.png").is_file():
            lines += ["![accuracy by level](accuracy_by_level.png)", ""]
        first = next(iter(bench["variants"].values()))
        if first["by_family"]:
            fam_checked = (first.get("checked") or {}).get("by_family", {})
            lines += ["| family | accuracy | checked | n |", "|---|---|---|---|"]
            lines += [f"| {f} | {_pct(r['accuracy'])} | {_pct(fam_checked.get(f, {}).get('accuracy'))} | {r['n']} |"
                      for f, r in first["by_family"].items()]
            lines.append("")
        if first["wrong"]:
            lines += ["### Some wrong answers", ""]
            for w in first["wrong"][:3]:
                lines += [f"- **{w['id']}**: {w['question']}", f"  expected {w['expected']}, got {w['got']}:",
                          "", "  ```", *("  " + x for x in w["completion"].splitlines()), "  ```", ""]
    curve = _read(d / "curve.json")
    if curve and (d / "curve.png").is_file():
        from .curve import format_curve

        lines += ["## Learning curve", "", f"Held-out accuracy (the first {curve['n']} problems, greedy) of the "
                  f"weights kept every {recipe.train.snapshot_every} steps, against the tokens trained on; "
                  "the plot adds each compared recipe's curve (`tracetutor curve`) and the held-out loss.", "",
                  format_curve(curve), "", "![learning curve](curve.png)", ""]
    export = _read(d / "export_report.json")
    if export:
        lines += _variants_section(export, bench, d)
    path = d / "report.md"
    path.write_text("\n".join(lines))
    return path
