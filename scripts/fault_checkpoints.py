"""Kill training while it writes a checkpoint, resume, and check the run still ends well.

Run by hand (not part of the test run), from the repository root:

    .venv/bin/python scripts/fault_checkpoints.py [--rounds 5] [--seed 0] [--keep]

It trains a copy of the micro recipe in a temporary models folder (TRACETUTOR_MODELS), with
a checkpoint after every step. Each round starts `tracetutor train` (or `train --resume`),
watches the checkpoints folder and sends SIGKILL while a checkpoint is being written: when a
new checkpoint folder holds a random number of its files and no trainer_state.json yet (the
Trainer writes that last). The next round must remove the half-written checkpoint and resume
from the newest complete one. After the last round the run is finished without a kill, and
the model must load, report the whole run (its steps, tokens and a loss curve from step 1)
and equal the weights of the same recipe trained without interruption. Exit code 0 when
every check holds.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACETUTOR = Path(sys.executable).with_name("tracetutor")
LAST_FILE = "trainer_state.json"  # the Trainer writes it last, so without it the write is under way
NEEDED = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", LAST_FILE]  # in the order written


def steps_in(ckpt_dir: Path) -> set[int]:
    if not ckpt_dir.is_dir():
        return set()
    return {int(p.name.split("-")[1]) for p in ckpt_dir.iterdir() if re.fullmatch(r"checkpoint-\d+", p.name)}


def newest_complete(ckpt_dir: Path) -> int | None:
    from tracetutor.train.trainer import checkpoint_problem

    return max((s for s in steps_in(ckpt_dir) if checkpoint_problem(ckpt_dir / f"checkpoint-{s}") is None), default=None)


def start(models: Path, args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "TRACETUTOR_MODELS": str(models), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([str(TRACETUTOR), *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def kill_during_a_write(proc: subprocess.Popen, ckpt_dir: Path, rng: random.Random) -> dict | None:
    """SIGKILL `proc` while it writes a checkpoint: the `skip`-th new checkpoint folder once it
    holds `files` files. What the folder held then, or None when training ended first."""
    skip, files = rng.randint(0, 2), rng.randint(0, 14)
    seen, hits = steps_in(ckpt_dir), 0
    while proc.poll() is None:
        for step in sorted(steps_in(ckpt_dir) - seen):
            folder = ckpt_dir / f"checkpoint-{step}"
            try:
                names = os.listdir(folder)
            except FileNotFoundError:  # rotated away already
                continue
            if LAST_FILE in names:
                seen.add(step)  # written in full between two looks
                continue
            if hits < skip:
                hits, seen = hits + 1, seen | {step}
                continue
            if len(names) >= files:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"step": step, "wanted": files}
        time.sleep(0.0002)
    return None


def describe(folder: Path) -> str:
    """What a killed write left of the files the Trainer needs to resume: whole, cut short or absent."""
    import json

    import torch
    from safetensors import safe_open

    def read(path):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            with safe_open(path, "pt") as f:
                f.keys()
        else:
            torch.load(path, map_location="cpu", weights_only=False)

    if not folder.is_dir():
        return "folder gone"
    states = []
    for name in NEEDED:
        try:
            read(folder / name)
            states.append(f"{name} whole")
        except FileNotFoundError:
            states.append(f"{name} absent")
        except Exception:  # any failure to read: the file was cut short
            states.append(f"{name} CUT SHORT")
    return f"{len(os.listdir(folder))} files: " + ", ".join(states)


def session_notes(log: Path) -> str:
    """What a session said about the checkpoints it found: removed ones and where it resumed."""
    text = log.read_text() if log.is_file() else ""
    removed = [f"removed {Path(m.group(1)).name} ({m.group(2)})"
               for m in re.finditer(r"^(\S+) is incomplete \((.*)\); removed it$", text, re.M)]
    resumed = re.search(r"^resuming from (\S+)", text, re.M)
    return "; ".join(removed + [f"resumed from {Path(resumed.group(1)).name}" if resumed else "started from scratch"])


def resumed_from(log: Path) -> int | None:
    m = re.search(r"^resuming from \S+checkpoint-(\d+)", log.read_text(), re.M)
    return int(m.group(1)) if m else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the temporary models folder")
    a = p.parse_args()
    rng = random.Random(a.seed)

    work = Path(tempfile.mkdtemp(prefix="tracetutor-faults-"))
    models, clean = work / "models", work / "clean"
    for d in (models, clean):
        d.mkdir()
        recipe = (ROOT / "models" / "micro.toml").read_text()
        (d / "micro.toml").write_text(re.sub(r"(?m)^save_every = \d+", "save_every = 1", recipe))
    ckpt_dir = models / "micro" / "checkpoints"
    print(f"working in {work}")

    failures, kills, misses, expected = [], 0, 0, None
    session = 0
    while kills < a.rounds:
        session += 1
        args = ["train", "micro"] + (["--resume"] if session % 2 == 0 else [])
        log = work / f"session-{session}.log"
        proc = start(models, args, log)
        hit = kill_during_a_write(proc, ckpt_dir, rng)
        notes = session_notes(log)
        if expected is not None and resumed_from(log) != expected:
            failures.append(f"session {session} resumed from {resumed_from(log)}, not checkpoint-{expected}")
        if hit is None:
            failures.append(f"session {session} ended (exit code {proc.returncode}) before a kill; see {log}")
            break
        folder = ckpt_dir / f"checkpoint-{hit['step']}"
        state = describe(folder)
        complete = f"{LAST_FILE} whole" in state
        kills += not complete
        misses += complete
        expected = newest_complete(ckpt_dir)
        what = "missed (the write ended first)" if complete else f"round {kills}"
        print(f"{what}: `tracetutor {' '.join(args)}`: {notes}; SIGKILL while writing "
              f"checkpoint-{hit['step']} ({state}); newest complete: checkpoint-{expected}", flush=True)

    # the last session runs to the end
    session += 1
    log = work / f"session-{session}.log"
    proc = start(models, ["train", "micro"], log)
    proc.wait()
    if proc.returncode != 0:
        failures.append(f"the final session failed (exit code {proc.returncode}); see {log}")
    if expected is not None and resumed_from(log) != expected:
        failures.append(f"the final session resumed from {resumed_from(log)}, not checkpoint-{expected}")
    print(f"final: `tracetutor train micro`: {session_notes(log)}; exit code {proc.returncode}")
    print(*[line for line in log.read_text().splitlines() if line.startswith("trained ")], sep="\n")

    # the same recipe on the same data and tokenizer, never interrupted
    for part in ("data", "tokenizer"):
        shutil.copytree(models / "micro" / part, clean / "micro" / part)
    ref = start(clean, ["train", "micro"], work / "clean.log")
    ref.wait()
    failures += check_model(models / "micro", clean / "micro")

    print(f"summary: {kills} kills during a checkpoint write ({misses} missed, retried) over {session} sessions; "
          + ("all checks passed" if not failures else f"{len(failures)} check(s) failed:"))
    for f in failures:
        print(f"  - {f}")
    if a.keep or failures:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 1 if failures else 0


def check_model(model_dir: Path, clean_dir: Path) -> list[str]:
    """The resumed run's model loads, reports the whole run and equals the uninterrupted one."""
    import json

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    failures = []
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        with torch.no_grad():
            model(torch.tensor([[1, 2, 3]]))
    except Exception as e:  # any failure to load or run is what this check reports
        return [f"the trained model does not load: {e}"]
    got, ref = (json.loads((d / "train_metrics.json").read_text()) for d in (model_dir, clean_dir))
    steps = [p["step"] for p in got["loss_curve"]]
    if steps != [p["step"] for p in ref["loss_curve"]]:
        failures.append(f"the loss curve has steps {steps[:3]}...{steps[-3:]}, not those of the uninterrupted run")
    if (got["steps"], got["tokens"]) != (ref["steps"], ref["tokens"]):
        failures.append(f"steps and tokens {got['steps']}, {got['tokens']} differ from {ref['steps']}, {ref['tokens']}")
    a, b = load_file(model_dir / "model.safetensors"), load_file(clean_dir / "model.safetensors")
    diff = max((a[k] - b[k]).abs().max().item() for k in b)
    if diff > 1e-5:
        failures.append(f"the weights differ from the uninterrupted run's by up to {diff:.2e}")
    print(f"model: loads; {got['steps']} steps, {got['tokens']:,} tokens, loss curve steps {steps[0]}..{steps[-1]}, "
          f"final loss {got['final_loss']} (uninterrupted {ref['final_loss']}), "
          f"{got['train_seconds']} s over all sessions, {got['tokens_per_s']:,} tokens/s "
          f"(uninterrupted {ref['tokens_per_s']:,}); weights vs uninterrupted: max |diff| {diff:.1e}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
