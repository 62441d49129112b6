"""From traces to training examples: chat rendering, loss masking, curriculum order, batching.

Each example is the conversation as the model's own chat template renders it: the prompt (up
to the assistant turn, tokenized exactly as at inference time, runtime/chat.py), then the assistant turn
through its end-of-turn token. Labels are -100 over the prompt, so the loss falls on the
assistant turn only.

The curriculum is an explicit order: stage by stage (easy to hard), each stage mixing in
examples of earlier stages' levels, and within a stage batches of similar length (length
grouping) so little compute goes to padding. The trainer then reads the examples in order.
"""

from __future__ import annotations

import random
from collections import defaultdict

from tracetutor.runtime.chat import encode_chat
from tracetutor.trace import Trace, render_completion

IGNORE = -100


def encode_prompt(tokenizer, question: str) -> list[int]:
    return encode_chat(tokenizer, question)


def encode_completion(tokenizer, question: str, completion: str, prompt: list[int] | None = None) -> list[int]:
    """The assistant turn's ids, through the end of turn (the tokenizer's eos), as the chat
    template renders the whole conversation; what a template adds after the end of turn (a
    newline) is not the model's to learn. A trace's text is plain text, as a learner's is at
    inference: <|im_end|> written in an imported answer is characters, not an end of turn."""
    prompt = prompt if prompt is not None else encode_prompt(tokenizer, question)
    full = encode_chat(tokenizer, [{"role": "user", "content": question},
                                   {"role": "assistant", "content": completion}], add_generation_prompt=False)
    if full[:len(prompt)] != prompt:
        raise ValueError(f"{tokenizer.name_or_path}: the chat template renders the user turn differently "
                         "when an assistant turn follows it; the loss mask needs the prompt as a prefix")
    turn = full[len(prompt):]
    if tokenizer.eos_token_id not in turn:
        raise ValueError(f"{tokenizer.name_or_path}: the chat template does not end the assistant turn with "
                         f"the tokenizer's eos token {tokenizer.eos_token!r}, so generation would not stop")
    return turn[:turn.index(tokenizer.eos_token_id) + 1]


def encode_example(tokenizer, trace: Trace, mode: str, max_len: int) -> dict | None:
    """Token ids and masked labels of one trace; None when it does not fit in max_len."""
    prompt = encode_prompt(tokenizer, trace.question)
    completion = encode_completion(tokenizer, trace.question, render_completion(trace, mode), prompt)
    ids = prompt + completion
    if len(ids) > max_len:
        return None
    return {"input_ids": ids, "labels": [IGNORE] * len(prompt) + completion}


def curriculum_order(traces: list[Trace], stages, batch_size: int, seed: int,
                     lengths: list[int] | None = None, family_weights: dict | None = None,
                     source_weights: dict | None = None, shuffled: bool = False) -> list[list[int]]:
    """Batches of trace indices, stage after stage; within a stage, length-grouped batches.

    `stages` are recipe Stage objects (levels, examples, replay). Each stage draws
    `examples` traces: a `replay` share from the levels of earlier stages, the rest from its
    own levels. Each family's share of a draw is its share of the traces at those levels
    times its weight in `family_weights` and its source's in `source_weights` (1 when not
    named; a family is counted per source); within a family the draw cycles through a shuffled
    pool, so every trace is used before any repeats.
    `lengths` (token counts) group batches by length; without them, text length stands in.
    `shuffled` trains on the same examples in one random order, with no stage order (the
    ablation that measures what the curriculum's order is worth).
    """
    rng = random.Random(seed)
    weights = family_weights or {}
    present = sorted({str(t.family) for t in traces})
    unknown = sorted(set(weights) - set(present))
    if unknown:
        raise ValueError(f"train.family_weights names families with no training traces: {', '.join(unknown)} "
                         f"(the training traces' families: {', '.join(present)})")
    sources = source_weights or {}
    by_cell = defaultdict(list)
    for i, t in enumerate(traces):
        by_cell[(str(t.source or "synth"), str(t.family), t.difficulty or 1)].append(i)

    pools: dict[tuple, list[int]] = {}

    def draw(levels: tuple, n: int) -> list[int]:
        members = defaultdict(list)
        for (src, fam, lv), idx in sorted(by_cell.items()):
            if lv in levels:
                members[(src, fam)].extend(idx)
        if not members:
            raise ValueError(f"no training traces at difficulty level(s) {list(levels)}")
        mass = {(src, fam): len(idx) * weights.get(fam, 1.0) * sources.get(src, 1.0)
                for (src, fam), idx in members.items()}
        total = sum(mass.values())
        quota = {fam: int(n * m / total) for fam, m in mass.items()}
        # the examples rounding left over go to the families with the largest remainders
        short = sorted(mass, key=lambda f: quota[f] - n * mass[f] / total)
        for fam in short[:n - sum(quota.values())]:
            quota[fam] += 1
        out = []
        for fam, k in quota.items():
            pool = pools.setdefault((levels, fam), [])
            for _ in range(k):
                if not pool:
                    pool.extend(members[fam])
                    rng.shuffle(pool)
                out.append(pool.pop())
        return out

    lengths = lengths or [_text_length(t) for t in traces]
    batches: list[list[int]] = []
    seen_levels: list[int] = []
    for stage in stages:
        own = tuple(sorted(set(stage.levels)))
        earlier = tuple(sorted(set(seen_levels) - set(own)))
        n_replay = round(stage.examples * stage.replay) if earlier else 0
        picked = draw(own, stage.examples - n_replay) + (draw(earlier, n_replay) if n_replay else [])
        rng.shuffle(picked)
        batches.extend(_length_grouped(picked, lengths, batch_size, rng))
        seen_levels.extend(stage.levels)
    if shuffled:  # the very same examples, mixed by a generator of its own
        every, mixer = [i for b in batches for i in b], random.Random(f"{seed}/shuffled")
        mixer.shuffle(every)
        batches = _length_grouped(every, lengths, batch_size, mixer)
    return batches


def _text_length(t: Trace) -> int:
    return len(t.question) + sum(len(s) for s in t.steps)


def _length_grouped(indices, lengths, batch_size, rng, megabatch=64):
    """Sort each window of `megabatch` batches by length, cut into batches, shuffle them."""
    out = []
    window = batch_size * megabatch
    for start in range(0, len(indices), window):
        chunk = sorted(indices[start:start + window], key=lambda i: lengths[i])
        out.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


class PadCollator:
    """Right-pads a batch to its longest example, rounded up to a multiple of `multiple`, and
    masks the padding from the loss.

    No attention mask: with right padding and causal attention no real token ever sees a pad,
    and leaving the mask out lets attention take its fast causal path. The rounding keeps the
    number of distinct batch shapes small: on a CPU oneDNN compiles kernels for every new
    matrix shape, and a new length every batch costs more than a few padded positions.
    """

    def __init__(self, pad_id: int, multiple: int = 16):
        self.pad_id, self.multiple = pad_id, multiple

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        n = -(-max(len(e["input_ids"]) for e in examples) // self.multiple) * self.multiple
        ids = torch.full((len(examples), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), n), IGNORE, dtype=torch.long)
        for r, e in enumerate(examples):
            k = len(e["input_ids"])
            ids[r, :k] = torch.tensor(e["input_ids"])
            labels[r, :k] = torch.tensor(e["labels"])
        return {"input_ids": ids, "labels": labels}
