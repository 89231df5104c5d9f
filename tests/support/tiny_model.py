"""A tiny random Llama-shaped causal LM with a trained fast tokenizer, for tests.

``build_tiny_model(path)`` writes a model directory that ``AutoModelForCausalLM`` and
``AutoTokenizer`` reload from the path: 2 layers, hidden size 128, 2 attention heads
(head_dim 64, as vLLM's CPU attention needs), a byte-level BPE tokenizer of at most
``VOCAB_SIZE`` tokens trained on a small built-in corpus. Everything is seeded, so two
builds write the same weights and the same tokenizer.

From the shell: ``python -m tests.support.tiny_model OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

VOCAB_SIZE = 512
SEED = 1234
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")

_CORPUS = (
    "Energy is the capacity to do work, and power is the rate at which energy is used.",
    "A graphics processing unit draws more power when it runs large matrix multiplications.",
    "Large language models generate text one token at a time, attending to every earlier token.",
    "The key and value cache stores past attention states so that decoding does not recompute them.",
    "Batching several requests together raises throughput but can increase the latency of each one.",
    "Researchers measure joules per token to compare inference settings fairly across hardware.",
    "The idle power of a device is subtracted to estimate the energy attributable to the workload.",
    "Temperature, clock speed and throttling all change how much energy the same work consumes.",
    "A careful benchmark repeats each configuration in several cycles and reports confidence intervals.",
    "Tokenizers split text into pieces; byte level encodings can represent any string without unknowns.",
    "What is the capital of France? The capital of France is Paris, a city on the river Seine.",
    "Write a short poem about the sea, the wind, the stars and the quiet hours before dawn.",
    "Explain why the sky is blue: sunlight scatters off molecules, and blue light scatters the most.",
    "Summarise the following paragraph in one sentence, keeping the numbers 1, 2, 3, 10 and 100.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # prints 5",
)


def corpus() -> list[str]:
    """The built-in training text (a few hundred sentences' worth, repeated for stable counts)."""
    return [line for _ in range(20) for line in _CORPUS]


def _train_tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def build_tokenizer() -> Any:
    """The trained byte-level BPE tokenizer as a transformers fast tokenizer (pad/bos/eos/unk set)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=_train_tokenizer(),
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=1024,
    )


def build_tiny_model(path: Path, eos_scale: float = 1.0) -> Path:
    """Write the tiny model and its tokenizer to ``path`` (created if needed) and return it.

    ``eos_scale`` multiplies the EOS row of the output projection: 3.0 makes greedy
    decoding end some prompts early (at varied lengths) and run others to the limit.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=1024,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[ids["</s>"]] *= eos_scale
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        pad_token_id=ids["<pad>"], bos_token_id=ids["<s>"], eos_token_id=ids["</s>"]
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_adapter(model_dir: Path, path: Path) -> Path:
    """A seeded random LoRA adapter (rank 4 on the attention q/v projections) for the tiny model,
    saved by peft to ``path``. Its B matrices are random (not peft's zeros), so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(SEED + 1)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(path)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.support.tiny_model OUT_DIR", file=sys.stderr)
        return 2
    print(build_tiny_model(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
