"""Train a recipe's model: a Llama-architecture transformers model from scratch, on the
curriculum's stages in order, with the Hugging Face Trainer.

Loss on the assistant turn only, length-grouped batches, cosine schedule to a floor,
checkpoints every `save_every` steps and `--resume` from the newest complete one (a run killed
while saving leaves a checkpoint that is removed, not resumed from), a progress bar with
tokens/s, and the same result for the same seed. The metrics span the whole run, over every
session that resumed it: the loss curve and token count come from the Trainer's state in the
checkpoint, the seconds from a clock saved beside them. bf16 autocast where the hardware has it
(a CUDA GPU, or a CPU with native bf16), fp32 otherwise.

Data parallel through torchrun: `train()` relaunches itself as `train.processes` processes
(by default one per GPU; on a CPU one process, whose threads use every core). Every optimizer
step still takes `batch_size` examples in curriculum order; each process takes its share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

from tracetutor.files import atomic_path, write_json
from tracetutor.recipe import Recipe, RecipeError
from tracetutor.runtime.types import DEFAULT_MAX_NEW_TOKENS
from tracetutor.trace import load_traces

from .dataset import PadCollator, curriculum_order, encode_example

CURVE = "curve"  # the folder in checkpoints/ that keeps the learning curve's snapshots


def pick_precision(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if native_cpu_bf16() else "fp32"


def native_cpu_bf16() -> bool:
    """Whether the CPU computes in bf16 natively (AVX512-BF16 or AMX). oneDNN also runs bf16 on
    plain AVX-512 by converting, which is slower than fp32 (SmolLM2 LoRA: 17 s a step against 5)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False  # elsewhere fp32: always correct, and bf16 is rarely native on a laptop
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_model(recipe: Recipe, tokenizer):
    """The model to train: a new Llama for a from-scratch recipe, else the recipe's base, with a
    LoRA adapter on it when the recipe has a [lora] table."""
    if recipe.model.base is not None:
        return _pretrained(recipe)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    m = recipe.model
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=m.hidden_size,
        intermediate_size=m.intermediate_size,
        num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads,
        num_key_value_heads=m.num_kv_heads,
        max_position_embeddings=m.max_len,
        rope_theta=m.rope_theta,
        tie_word_embeddings=m.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(recipe.train.seed)
    return LlamaForCausalLM(config)


def _pretrained(recipe: Recipe):
    import torch
    from transformers import AutoModelForCausalLM

    from tracetutor.runtime.bases import LORA_TARGETS, resolve_base

    base = resolve_base(recipe.model.base, recipe.model.gguf_file)
    base = str(Path(base).resolve()) if Path(base).is_dir() else base  # the adapter records where its base is
    lora, kwargs = recipe.lora, {}
    if lora is not None and lora.qlora and torch.cuda.is_available():
        try:
            from transformers import BitsAndBytesConfig

            import bitsandbytes  # noqa: F401
        except ImportError:
            print("lora.qlora: bitsandbytes is not installed; training LoRA over the full-precision base")
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    torch.manual_seed(recipe.train.seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, **kwargs)
    if lora is None:
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if "quantization_config" in kwargs:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.train.gradient_checkpointing)
    targets = lora.target_modules or LORA_TARGETS.get(model.config.model_type)
    if targets is None:
        raise RecipeError(f"{recipe.path or recipe.name}: lora.target_modules: no default for architecture "
                          f"{model.config.model_type!r}; name the modules to adapt")
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def weights_file(folder: Path) -> str:
    """The weights file of a model folder or checkpoint: a LoRA run saves only its adapter."""
    return "adapter_model.safetensors" if (Path(folder) / "adapter_config.json").is_file() else "model.safetensors"


def plan_processes(batch_size: int, processes: int = 0) -> int:
    """How many data-parallel processes to train with (see TrainConfig.processes)."""
    import torch

    if processes:
        return processes
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return n if batch_size % n == 0 else 1
    return 1  # on a CPU one process with a thread per core is as fast as one process per core


def _world() -> tuple[int, int]:
    """(this process's rank, number of processes) under torchrun, (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _launch(recipe: Recipe, processes: int, resume: bool, data_dir: Path, out_dir: Path, progress: bool) -> dict:
    """Run `train` in `processes` data-parallel processes with torchrun; the metrics rank 0 wrote."""
    import torch

    env = dict(os.environ)
    if not torch.cuda.is_available():
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        env.setdefault("OMP_NUM_THREADS", str(max(1, cores // processes)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "tracetutor.train.trainer", str(recipe.path), "--out", str(out_dir), "--data", str(data_dir)]
    cmd += ["--resume"] if resume else []
    cmd += [] if progress else ["--quiet"]
    metrics_path = out_dir / "train_metrics.json"
    metrics_path.unlink(missing_ok=True)
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0 or not metrics_path.is_file():
        raise RuntimeError(f"training {recipe.name} in {processes} processes failed (exit code {rc}); "
                           f"rerun to resume from the last checkpoint in {out_dir / 'checkpoints'}")
    return json.loads(metrics_path.read_text())


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why the Trainer cannot resume from `ckpt` (a file it needs is missing or unreadable), or None.

    A run killed while saving leaves a folder with only some of its files, or one cut short.
    Every file is read, not only looked for: under torchrun each process writes its own RNG
    state, possibly after the trainer state that process 0 writes last.
    """
    import torch
    from safetensors import safe_open

    def weights(path):
        with safe_open(path, "pt") as f:  # checks the header against the file's length
            f.keys()

    def load(path):
        torch.load(path, map_location="cpu", weights_only=False)

    def unreadable(name, read) -> str | None:
        if not (ckpt / name).is_file():
            return f"{name} is missing"
        try:
            read(ckpt / name)
        except Exception as e:  # torch, safetensors and json each raise their own errors
            return f"{name} is unreadable ({' '.join(str(e).split())[:120]})"
        return None

    state = {}
    problem = unreadable("trainer_state.json", lambda path: state.update(json.loads(path.read_text())))
    if problem or state.get("global_step") != _step(ckpt):
        return problem or f"trainer_state.json is at step {state.get('global_step')}"
    processes = state.get("stateful_callbacks", {}).get("RunClock", {}).get("attributes", {}).get("processes", 1)
    rng = ["rng_state.pth"] if processes == 1 else [f"rng_state_{r}.pth" for r in range(processes)]
    needed = [(weights_file(ckpt), weights), ("optimizer.pt", load), ("scheduler.pt", load)] + [(n, load) for n in rng]
    for name, read in needed:
        if problem := unreadable(name, read):
            return problem
    return None


def _step(ckpt: Path) -> int:
    return int(ckpt.name.rsplit("-", 1)[1])


def last_complete_checkpoint(ckpt_dir: Path, remove_incomplete: bool = True, log=print) -> Path | None:
    """The newest checkpoint in `ckpt_dir` the Trainer can resume from; the incomplete ones
    newer than it are removed (they would be resumed from, or outlive it in the rotation)."""
    ckpts = sorted((p for p in ckpt_dir.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)),
                   key=_step, reverse=True) if ckpt_dir.is_dir() else []
    for ckpt in ckpts:
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        if remove_incomplete:
            log(f"{ckpt} is incomplete ({problem}); removed it")
            shutil.rmtree(ckpt)
    return None


def _heldout_batches(tokenizer, data_dir: Path, cfg, max_len: int):
    """The held-out split's first 64 traces as batches, for the loss evaluated during training."""
    path = data_dir / "heldout.jsonl"
    if not path.is_file():
        return None
    examples = [e for t in load_traces(path)[:64] if (e := encode_example(tokenizer, t, cfg.mode, max_len))]
    return _BatchList([examples[i:i + cfg.batch_size] for i in range(0, len(examples), cfg.batch_size)]) or None


class _Examples:
    """The training traces' examples, encoded when first asked for: a short budget over a large
    split encodes only what the curriculum draws."""

    def __init__(self, tokenizer, traces, mode: str, max_len: int):
        self.tokenizer, self.traces, self.mode, self.max_len = tokenizer, traces, mode, max_len
        self.done: dict[int, dict | None] = {}

    def __getitem__(self, i: int) -> dict | None:
        if i not in self.done:
            self.done[i] = encode_example(self.tokenizer, self.traces[i], self.mode, self.max_len)
        return self.done[i]

    def __len__(self) -> int:
        return len(self.traces)

    def length(self, i: int) -> int:
        """Tokens of example i; a too-long one sorts last and is reported once the order is known."""
        e = self[i]
        return len(e["input_ids"]) if e is not None else self.max_len + 1


class _Lengths:
    """The examples' lengths as the curriculum's order reads them (by index), encoded on demand."""

    def __init__(self, examples: _Examples):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> int:
        return self.examples.length(i)


class _BatchList:
    """A dataset whose items are whole batches, read in curriculum order."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.batches[i]


def train(recipe: Recipe, *, resume: bool = False, data_dir: Path | None = None,
          out_dir: Path | None = None, progress: bool = True) -> dict:
    """Train `recipe` on its data (data_dir/train.jsonl, tokenizer in out_dir/tokenizer).

    Writes the final model (safetensors, config, tokenizer, generation config) to out_dir and
    returns the training metrics, also saved as out_dir/train_metrics.json.
    """
    import torch
    from transformers import DataCollatorWithFlattening, GenerationConfig, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .tokenizer import load_tokenizer

    out_dir = Path(out_dir or recipe.dir)
    data_dir = Path(data_dir or out_dir / "data")
    ckpt_dir = out_dir / "checkpoints"
    cfg = recipe.train
    rank, world = _world()
    main = rank == 0
    tokenizer = load_tokenizer(out_dir / "tokenizer")
    traces = load_traces(data_dir / "train.jsonl")
    examples = _Examples(tokenizer, traces, cfg.mode, recipe.model.max_len)
    stages, batch_size = cfg.budget(torch.cuda.is_available())
    order = curriculum_order(traces, stages, batch_size, cfg.seed, lengths=_Lengths(examples),
                             family_weights=cfg.family_weights, source_weights=recipe.data.weights,
                             shuffled=cfg.order == "shuffled")
    drawn = sorted({i for b in order for i in b})
    too_long = [i for i in drawn if examples[i] is None]
    if too_long:  # recipe errors are raised before any process starts, so they reach the user as one line
        longest = max(len(encode_example(tokenizer, traces[i], cfg.mode, 1 << 30)["input_ids"]) for i in too_long)
        raise RecipeError(f"{recipe.path or recipe.name}: model.max_len = {recipe.model.max_len} is too short for "
                          f"{len(too_long)} of the {len(drawn)} training traces drawn from {data_dir}: the longest "
                          f"is {longest} tokens (mode {cfg.mode!r}); raise max_len to at least {longest}")
    # which checkpoint to resume from is settled (and incomplete ones removed) before processes start
    resume_from = last_complete_checkpoint(ckpt_dir, remove_incomplete=world == 1) if resume else None
    if resume and resume_from is None and main:
        print(f"no complete checkpoint in {ckpt_dir}; starting from scratch")
    if world == 1 and recipe.path is not None:
        processes = plan_processes(batch_size, cfg.processes)
        if processes > 1:
            return _launch(recipe, processes, resume_from is not None, data_dir, out_dir, progress)
    # one item per process per step: the processes' shares of each batch, in turn
    batches = _BatchList([[examples[i] for i in (b[r::world] or b[:1])] for b in order for r in range(world)])
    collate = DataCollatorWithFlattening() if cfg.packing else PadCollator(tokenizer.pad_token_id)
    held = _heldout_batches(tokenizer, data_dir, cfg, recipe.model.max_len) if cfg.eval_every else None

    precision = pick_precision(cfg.precision)
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=1,  # one item is one process's share of a length-grouped batch
        max_steps=len(order),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio},
        warmup_ratio=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        ddp_find_unused_parameters=False,
        save_steps=cfg.save_every,
        eval_strategy="steps" if held else "no",
        eval_steps=cfg.eval_every or None,
        per_device_eval_batch_size=1,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        save_total_limit=2,
        logging_steps=max(1, min(50, len(batches) // 50)),
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,  # replaced by the bar below, which shows tokens/s
    )

    class SequentialTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)

        def _load_optimizer_and_scheduler(self, checkpoint):
            if checkpoint is None or world == 1 or torch.cuda.is_available():
                return super()._load_optimizer_and_scheduler(checkpoint)
            # on a CPU under torchrun the Trainer maps the state to "cpu:<rank>", which torch.load refuses
            for part, name in ((self.optimizer, "optimizer.pt"), (self.lr_scheduler, "scheduler.pt")):
                part.load_state_dict(torch.load(Path(checkpoint) / name, map_location="cpu", weights_only=True))

    RunClock, TokensPerSecondBar, Snapshots = _callbacks()
    clock = RunClock(world)
    snapshots = [Snapshots(ckpt_dir / CURVE, cfg.snapshot_every)] if cfg.snapshot_every else []
    model = build_model(recipe, tokenizer)
    model.config.use_cache = False  # a KV cache in training is waste, and it hides packing from the attention mask
    if not torch.cuda.is_available():
        # on a CPU, plain attention beats SDPA's flash kernel (slow backward) at these lengths
        model.set_attn_implementation("eager")
    trainer = SequentialTrainer(
        model=model, args=args, train_dataset=batches, eval_dataset=held, processing_class=tokenizer,
        data_collator=lambda items: collate(items[0]),
        callbacks=[clock] + snapshots + ([TokensPerSecondBar()] if progress and main else []),
    )
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # the bar and loss_curve replace its dict dumps
    n_params = sum(p.numel() for p in model.parameters())
    n_trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if main:
        trained = f" ({n_trained / 1e6:.2f}M trained, {recipe.method})" if n_trained != n_params else ""
        print(f"{recipe.name}: {n_params / 1e6:.2f}M parameters{trained}, {len(traces)} traces, {len(order)} steps "
              f"of {batch_size}, mode={cfg.mode}, precision={precision}, device={args.device}, "
              f"{world} process(es) x {torch.get_num_threads()} thread(s)")
        if resume_from is not None:
            print(f"resuming from {resume_from} (step {_step(resume_from)} of {len(order)})")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="mtime may not be reliable")
        warnings.filterwarnings("ignore", message="To copy construct from a tensor")
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    # the Trainer's state holds the whole run: its log and token count come back with a checkpoint
    state, seconds = trainer.state, clock.seconds()
    log = [{"step": e["step"], "loss": e["loss"], "lr": e.get("learning_rate"),
            "tokens": int(e.get("num_input_tokens_seen", 0))} for e in state.log_history if "loss" in e]
    evals = [{"step": e["step"], "loss": e["eval_loss"]} for e in state.log_history if "eval_loss" in e]
    tokens = state.num_input_tokens_seen
    if not main:
        return {"rank": rank}
    generation = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    model.generation_config = generation
    model.config.use_cache = True
    for stale in ("model.safetensors", "adapter_model.safetensors", "adapter_config.json"):
        (out_dir / stale).unlink(missing_ok=True)  # a LoRA run after a full one (or back) leaves no mix
    model.save_pretrained(out_dir, safe_serialization=True)
    generation.save_pretrained(out_dir)  # an adapter folder too: the runtime reads it from there
    tokenizer.save_pretrained(out_dir)
    metrics = {
        "recipe": recipe.name,
        "mode": cfg.mode,
        "method": recipe.method,
        "base": recipe.model.base,
        "parameters": n_params,
        "trained_parameters": n_trained,
        "budget": "gpu" if stages is not cfg.stages else "cpu",
        "steps": state.global_step,
        "examples": sum(len(b) for b in order),
        "tokens": int(tokens),
        "train_seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "final_loss": result.training_loss if not log else log[-1]["loss"],
        "precision": precision,
        "device": str(args.device),
        "processes": world,
        "threads_per_process": torch.get_num_threads(),
        "resumed": resume_from is not None,
        "loss_curve": log,
        "eval_curve": evals,
    }
    write_json(out_dir / "train_metrics.json", metrics)
    return metrics


def _callbacks():
    """The training callbacks; built on call because they subclass transformers classes."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    class RunClock(TrainerCallback, ExportableState):
        """Seconds spent training over every session of a run. Its state is saved in each
        checkpoint's trainer_state.json (with the number of processes, whose RNG states the
        checkpoint holds) and read back from there when a session resumes."""

        def __init__(self, processes: int = 1):
            self.processes, self.before, self.start = processes, 0.0, None

        def on_train_begin(self, args, state, control, **kw):
            saved = state.stateful_callbacks.get("RunClock") or {}
            self.before, self.start = float(saved.get("attributes", {}).get("seconds", 0.0)), time.time()
            # a checkpoint saved without this clock still gets its entry, which the Trainer expects
            state.stateful_callbacks["RunClock"] = self.state()

        def seconds(self) -> float:
            return self.before + (time.time() - self.start if self.start else 0.0)

        def state(self) -> dict:
            return {"args": {"processes": self.processes},
                    "attributes": {"seconds": round(self.seconds(), 3), "processes": self.processes}}

    class TokensPerSecondBar(TrainerCallback):
        """A tqdm bar over optimizer steps showing loss and tokens/s (ETA comes from tqdm);
        no loss until one is logged (on resume, the last one the run logged)."""

        def on_train_begin(self, args, state, control, **kw):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train",
                            dynamic_ncols=True, unit="step")
            self.t0, self.tok0 = time.time(), state.num_input_tokens_seen
            self.loss = next((e["loss"] for e in reversed(state.log_history) if "loss" in e), None)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.loss = logs["loss"]

        def on_step_end(self, args, state, control, **kw):
            rate = (state.num_input_tokens_seen - self.tok0) / max(time.time() - self.t0, 1e-9)
            shown = {} if self.loss is None else {"loss": f"{self.loss:.3f}"}
            self.bar.set_postfix(shown | {"tok_s": f"{rate:,.0f}"}, refresh=False)
            self.bar.update(state.global_step - self.bar.n)

        def on_train_end(self, args, state, control, **kw):
            self.bar.close()

    class Snapshots(TrainerCallback):
        """The trained weights every `every` steps, kept as `folder`/step-<N>.safetensors with the
        step and the tokens seen so far in its metadata: the learning curve's points."""

        def __init__(self, folder: Path, every: int):
            self.folder, self.every = folder, every

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % self.every or not state.is_world_process_zero:
                return
            from safetensors.torch import save_file

            weights = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
            meta = {"step": str(state.global_step), "tokens": str(int(state.num_input_tokens_seen))}
            with atomic_path(self.folder / f"step-{state.global_step:06d}.safetensors") as tmp:
                save_file(weights, str(tmp), metadata=meta)

    return RunClock, TokensPerSecondBar, Snapshots


def main(argv: list[str] | None = None) -> int:
    """Entry point of each data-parallel process that `_launch` starts under torchrun."""
    import argparse

    from tracetutor.recipe import load_recipe

    p = argparse.ArgumentParser(description="one process of a data-parallel training run")
    p.add_argument("recipe")
    p.add_argument("--out", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    train(load_recipe(a.recipe), resume=a.resume, data_dir=Path(a.data), out_dir=Path(a.out), progress=not a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
