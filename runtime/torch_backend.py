"""The torch backend: a Hugging Face model folder run by transformers, with a KV cache."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .chat import encode_chat, token_bytes_function
from .sampling import Sampler
from .types import Settings


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | Path, *, threads: int | None = None, device: str | None = None,
                 merge: bool = True):
        """`merge`: a LoRA adapter's weights are merged into its base's (W + B·A·scale, in fp32),
        so it runs as fast as the base; unmerged, its parameters keep the adapter's names."""
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise ImportError(f"the torch-fp32 variant needs torch and transformers ({e.name} is missing): "
                              "pip install tracetutor[train], or use a gguf-* or onnx-* variant") from e

        if threads:
            torch.set_num_threads(threads)
        path = Path(path)
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # transformers' own errors for a missing or damaged file rarely name it
        tok_dir = path
        try:
            if (path / "adapter_config.json").is_file():  # a LoRA adapter, over its base
                from .bases import load_adapter

                self.model, tok_dir = load_adapter(path, torch.float32)
                if merge:
                    self.model = self.model.merge_and_unload()
            else:
                self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        except Exception as e:
            raise ValueError(f"{path}: cannot load the model ({' '.join(str(e).split())[:200]}); retrain it or "
                             "restore config.json and model.safetensors") from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        except Exception as e:
            raise ValueError(f"{tok_dir}: cannot load the tokenizer ({' '.join(str(e).split())[:200]}); a tokenizer "
                             "file (tokenizer.json, tokenizer.model, tokenizer_config.json) is missing or damaged: "
                             "restore it or retrain") from None
        self.model.to(self.device).eval()
        fast = getattr(self.tokenizer, "backend_tokenizer", None)
        self._token_bytes = token_bytes_function(fast) if fast is not None else None
        self.eos_id = self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
        self.context_length = int(self.model.config.max_position_embeddings)
        # pieces as stored (`▁` for a space, `<0x41>` for a byte) are never shorter than their text
        self.max_token_bytes = max(len(piece.encode()) for piece in self.tokenizer.get_vocab())

    def encode_prompt(self, question: str | list[dict]) -> list[int]:
        """The ids the other backends give: the template rendered and cut as runtime/chat.py does
        it (transformers' apply_chat_template would parse <|end|> typed in a message as the token)."""
        return encode_chat(self.tokenizer, question)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Ids of `text`; with `special`, special-token text such as <|end|> becomes its id."""
        if special:
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)

    def logits(self, ids: list[int]):
        """Next-token logits at every position of `ids` (teacher forcing), as a numpy array."""
        with self.torch.inference_mode():
            out = self.model(input_ids=self.torch.tensor([ids], device=self.device))
        return out.logits[0].float().cpu().numpy()

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def token_bytes(self, token: int) -> bytes | None:
        return self._token_bytes(token) if self._token_bytes is not None else None

    def stream_ids(self, prompt: list[int], settings: Settings) -> Iterator[tuple[int, float | None]]:
        torch = self.torch
        sampler = Sampler(settings)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt], device=self.device), use_cache=True)
            for _ in range(settings.max_new_tokens):
                logits = out.logits[0, -1].float().cpu().numpy()
                tok = sampler.pick(logits)
                if tok == self.eos_id:
                    return
                yield tok, sampler.logprob(logits, tok)
                out = self.model(input_ids=torch.tensor([[tok]], device=self.device),
                                 past_key_values=out.past_key_values, use_cache=True)

    def generate_batch(self, prompts: list[list[int]], settings: Settings, batch_size: int = 64) -> list[list[int]]:
        torch = self.torch
        # similar lengths together wastes less on left padding
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        by_index: dict[int, list[int]] = {}
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            n = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), n), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), n), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, n - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[r, n - len(prompts[i]):] = 1
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                    max_new_tokens=settings.max_new_tokens, do_sample=False,
                    eos_token_id=self.eos_id, pad_token_id=self.pad_id)
            for r, i in enumerate(idx):
                gen = out[r, n:].tolist()
                by_index[i] = gen[:gen.index(self.eos_id)] if self.eos_id in gen else gen
        return [by_index[i] for i in range(len(prompts))]

    def close(self) -> None:
        self.model = None
