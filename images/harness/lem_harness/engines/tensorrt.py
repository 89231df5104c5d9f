"""The TensorRT-LLM engine: build (or reuse) a TensorRT engine, then serve the prompt set through the LLM API.

The only module of the harness that imports tensorrt_llm, and only inside methods, so that
``lem_harness`` imports where TensorRT-LLM is absent. Pinned against TensorRT-LLM 1.0.0
(``tensorrt_args``); never run on the development machines (no NVIDIA GPU there).

- ``build`` with ``tensorrt.engine_path`` uses that prebuilt engine directory as it is (no
  build, no cache). Otherwise it checks the GPU's compute capability against the requested quantisation and
  precision, then reuses the cached engine of this (model, build parameters, TensorRT-LLM
  version, compute capability) or builds and publishes one (``trt_cache``). The runner
  measures it as the ``build`` phase, apart from loading and inference.
- ``load`` starts the LLM API on the saved engine directory. For ``tp_size x pp_size > 1``
  TensorRT-LLM 1.0's LLM API starts its own MPI workers on this node (mpi4py
  ``MPIPoolExecutor``): no ``mpirun`` is needed, but the container needs a large shared
  memory (``ipc=host`` or ``shm_size``) and ``memlock=-1`` / a large stack ulimit.
- All prompts go in at once, as token ids; the in-flight batcher runs up to
  ``max_batch_size`` of them together. Token counts come from the output token ids;
  per-request latency from ``request_perf_metrics``; ``streaming: true`` uses
  ``generate_async(streaming=True)`` and timestamps every token as it arrives.
- A LoRA ``adapter`` (a local PEFT directory) builds the engine with the LoRA plugin and its
  modules, and every request carries ``LoRARequest("adapter", 1, path)``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lem_harness.engines.adapters import read_adapter_rank
from lem_harness.engines.arrivals import Served, submit_on_schedule
from lem_harness.engines.base import (
    BatchResult,
    Engine,
    EngineUnavailableError,
    Generation,
    SetupInfo,
    Tokenizer,
    module_available,
)
from lem_harness.engines.batching import eos_ids
from lem_harness.engines.process_tree import descendant_pids, end_processes
from lem_harness.engines.tensorrt_args import (
    TRT_LLM_VERSION,
    build_llm_kwargs,
    build_params,
    lora_request_args,
    prefill_kwargs,
    required_compute_capability,
    runtime_llm_kwargs,
    sampling_kwargs,
    tensorrt_section,
    unsupported_settings,
)
from lem_harness.engines.token_timing import TokenClock
from lem_harness.engines.trt_cache import EngineCache, cache_key, check_compute_capability, model_fingerprint
from lem_harness.experiment import ExperimentConfig

logger = logging.getLogger("lem_harness")

IMAGE = "llenergymeasure/tensorrt"
VERSION_PACKAGES = ("tensorrt_llm", "tensorrt", "torch", "transformers", "mpi4py")
CACHE_ENV = "LEM_ENGINE_CACHE_DIR"
CONTAINER_CACHE_DIR = Path("/lem/cache/trt")  # the lem-trt-engines volume (lem.runtime.spec)
USER_CACHE_DIR = Path("~/.cache/lem/trt-engines")


def _unavailable() -> EngineUnavailableError:
    return EngineUnavailableError(
        f"the tensorrt backend needs TensorRT-LLM {TRT_LLM_VERSION}, which this environment lacks: "
        f"run it in the {IMAGE} image on a host with an NVIDIA GPU"
    )


def import_tensorrt_llm() -> Any:
    try:
        import tensorrt_llm
    except ImportError as e:
        raise _unavailable() from e
    return tensorrt_llm


def engine_cache_root(config: ExperimentConfig, env: Mapping[str, str] = os.environ) -> Path:
    """Where engines are cached: ``tensorrt.engine_cache_dir``, else $LEM_ENGINE_CACHE_DIR (the
    run spec's mounted cache), else the container's cache volume, else ~/.cache/lem/trt-engines."""
    section = tensorrt_section(config)
    if section.engine_cache_dir:
        return Path(section.engine_cache_dir).expanduser()
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    if CONTAINER_CACHE_DIR.is_dir():
        return CONTAINER_CACHE_DIR
    return USER_CACHE_DIR.expanduser()


def perf_generation(output: Any) -> Generation:
    """A finished TensorRT-LLM ``RequestOutput`` as a harness ``Generation``."""
    completion = output.outputs[0]
    latency: float | None = None
    metrics = getattr(completion, "request_perf_metrics", None)
    timing = getattr(metrics, "timing_metrics", None)
    if timing is not None and timing.last_token_time.total_seconds() > 0:
        latency = (timing.last_token_time - timing.arrival_time).total_seconds()
    return Generation(
        input_tokens=len(output.prompt_token_ids),
        output_tokens=len(completion.token_ids),
        latency_s=latency,
        output_ids=tuple(completion.token_ids),
    )


def scheduler_queue_s(output: Any) -> float:
    """Time a request waited in the executor's queue: first scheduled − arrival
    (``request_perf_metrics.timing_metrics``); 0 where the executor recorded no schedule time."""
    metrics = getattr(output.outputs[0], "request_perf_metrics", None)
    timing = getattr(metrics, "timing_metrics", None)
    if timing is None or timing.first_scheduled_time.total_seconds() <= 0:
        return 0.0
    return max(0.0, float((timing.first_scheduled_time - timing.arrival_time).total_seconds()))


class TensorRTEngine(Engine):
    version_packages = VERSION_PACKAGES
    name = "tensorrt"

    def __init__(self, config: ExperimentConfig, cache_dir: Path | None = None) -> None:
        super().__init__(config)
        problems = unsupported_settings(config)
        if problems:
            raise ValueError("; ".join(problems))
        self.section = tensorrt_section(config)
        self.cache_root = cache_dir if cache_dir is not None else engine_cache_root(config)
        self._tokenizer: Tokenizer | None = None
        self._engine_dir: Path | None = None
        self._llm: Any = None
        self._params: Any = None
        self._prefill_params: Any = None
        self._lora_request: Any = None  # LoRARequest of the config's adapter, given with every request
        self._children_before: set[int] = set()

    # ---- tokenizer

    def load_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            if not module_available("tensorrt_llm"):
                raise _unavailable()
            from transformers import AutoTokenizer

            from lem_harness.engines.pytorch import HFTokenizer

            self._tokenizer = HFTokenizer(AutoTokenizer.from_pretrained(self.config.model_name))
        return self._tokenizer

    # ---- build

    def build(self) -> SetupInfo:
        if self.section.engine_path is not None:  # prebuilt: loaded as it is, never built or cached
            self._engine_dir = Path(self.section.engine_path)
            logger.info("tensorrt engine prebuilt: %s", self._engine_dir)
            return SetupInfo(
                built=False, engine_cache_hit=None, notes=[f"prebuilt engine {self._engine_dir}"]
            )
        trt = import_tensorrt_llm()
        capability, gpu_name = _gpu_capability()
        check_compute_capability(capability, required_compute_capability(self.config), gpu_name)
        sm = f"{capability[0]}.{capability[1]}"
        params = build_params(self.config, self._lora_rank())
        key = cache_key(model_fingerprint(self.config.model_name), params, str(trt.__version__), sm)
        details = {
            "model": self.config.model_name,
            "build": params,
            "tensorrt_llm": str(trt.__version__),
            "sm": sm,
        }
        cached = EngineCache(self.cache_root).get_or_build(
            key, self._build_into, force_rebuild=self.section.force_rebuild, details=details
        )
        self._engine_dir = cached.path
        verb = "reused" if cached.hit else "built"
        logger.info("tensorrt engine %s: %s", verb, cached.path)
        return SetupInfo(built=not cached.hit, engine_cache_hit=cached.hit, notes=[])

    def _build_into(self, out_dir: Path) -> None:
        llm = _llm_class()(**_api_objects(build_llm_kwargs(self.config, self._lora_rank())))
        try:
            llm.save(str(out_dir))
        finally:
            llm.shutdown()
            del llm
            gc.collect()

    # ---- load and run

    def load(self) -> None:
        import_tensorrt_llm()
        if self._engine_dir is None:
            self.build()
        assert self._engine_dir is not None
        from tensorrt_llm import SamplingParams

        self._children_before = descendant_pids()
        kwargs = runtime_llm_kwargs(self.config, str(self._engine_dir), self._lora_rank())
        try:
            self._llm = _llm_class()(**_api_objects(kwargs))
        except BaseException:
            end_processes(descendant_pids() - self._children_before)  # half-started MPI workers
            raise
        kwargs = sampling_kwargs(self.config, self._eos_ids())
        self._params = SamplingParams(**kwargs)
        self._prefill_params = SamplingParams(**prefill_kwargs(kwargs))
        self._lora_request = _lora_request(self.config)

    def _lora_rank(self) -> int | None:
        """The adapter's LoRA rank, from its adapter_config.json (None without an adapter)."""
        if self.config.adapter is None:
            return None
        return read_adapter_rank(Path(self.config.adapter).expanduser(), f"adapter {self.config.adapter}")

    def _eos_ids(self) -> frozenset[int]:
        """Every EOS id of the model's generation config (the LLM API alone stops on one)."""
        from transformers import GenerationConfig

        tokenizer = self.load_tokenizer()
        hf_eos = getattr(getattr(tokenizer, "hf", None), "eos_token_id", None)
        try:
            generation_eos = GenerationConfig.from_pretrained(self.config.model_name).eos_token_id
        except OSError:  # no generation_config.json: the tokenizer's EOS
            generation_eos = None
        return eos_ids(generation_eos, hf_eos)

    def reset_prefix_cache(self) -> bool | None:
        """TensorRT-LLM 1.0's LLM API cannot drop reused KV blocks: False when KV cache reuse is on."""
        return False if self.section.enable_kv_cache_reuse else None

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """One batch of every prompt: the in-flight batcher schedules up to max_batch_size at a time."""
        return [list(range(len(prompts)))] if prompts else []

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._llm is None:
            raise RuntimeError("generate called before load")
        if not prompts:
            return BatchResult(generations=[], latency_s=0.0)
        if self.config.streaming:
            return asyncio.run(self._generate_streaming(prompts))
        start = time.perf_counter()
        outputs = self._llm.generate(
            [list(p) for p in prompts],
            sampling_params=self._params,
            use_tqdm=False,
            lora_request=self._lora_request,
        )
        latency = time.perf_counter() - start
        return BatchResult(generations=[perf_generation(o) for o in outputs], latency_s=latency)

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._llm is None:
            raise RuntimeError("generate_prefill called before load")
        start = time.perf_counter()
        outputs = self._llm.generate(
            [list(p) for p in prompts],
            sampling_params=self._prefill_params,
            use_tqdm=False,
            lora_request=self._lora_request,
        )
        latency = time.perf_counter() - start
        return BatchResult(generations=[perf_generation(o) for o in outputs], latency_s=latency)

    async def _generate_streaming(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        clocks = [TokenClock(input_tokens=len(p)) for p in prompts]
        start = time.perf_counter()
        await asyncio.gather(
            *(self._stream_one(list(p), clock) for p, clock in zip(prompts, clocks, strict=True))
        )
        latency = time.perf_counter() - start
        return BatchResult(generations=[c.generation(start) for c in clocks], latency_s=latency)

    async def _stream_one(self, prompt: list[int], clock: TokenClock) -> None:
        seen = 0
        stream = self._llm.generate_async(
            prompt, sampling_params=self._params, lora_request=self._lora_request, streaming=True
        )
        async for output in stream:
            ids = output.outputs[0].token_ids
            total = len(ids)
            clock.record(total - seen, time.perf_counter(), ids[seen:total])
            seen = total

    def serve(
        self,
        prompts: Sequence[Sequence[int]],
        offsets: Sequence[float],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> Served:
        """Each request handed to ``generate_async`` at its arrival; the in-flight batcher schedules
        it; processing starts when the executor first schedules it."""
        if self._llm is None:
            raise RuntimeError("serve called before load")
        llm, params = self._llm, self._params
        futures: list[Any] = []
        start = time.perf_counter()
        submitted = submit_on_schedule(
            offsets,
            lambda i: futures.append(llm.generate_async(list(prompts[i]), sampling_params=params)),
            clock,
            sleep,
        )
        outputs = [future.result() for future in futures]
        batch = BatchResult([perf_generation(o) for o in outputs], time.perf_counter() - start)
        starts = [at + scheduler_queue_s(o) for at, o in zip(submitted, outputs, strict=True)]
        return Served(batches=[batch], starts_s=starts)

    def synchronize(self) -> None:
        """``generate`` returns with every token delivered; also drain this process's CUDA queue, if any."""
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
            torch.cuda.synchronize()

    def close(self) -> None:
        if self._llm is None:
            return
        llm, self._llm, self._params = self._llm, None, None
        started = descendant_pids() - self._children_before
        try:
            llm.shutdown()
        except Exception as e:  # the process tree is ended below either way
            logger.warning("tensorrt_llm shutdown: %s: %s", type(e).__name__, e)
        del llm
        gc.collect()
        _empty_cuda_cache()
        end_processes(started)


# --------------------------------------------------------------------------- framework glue


def _llm_class() -> Any:
    """TensorRT-LLM 1.0's TensorRT-engine LLM (the top-level ``tensorrt_llm.LLM`` is the PyTorch flow)."""
    from tensorrt_llm._tensorrt_engine import LLM

    return LLM


def _lora_request(config: ExperimentConfig) -> Any:
    """TensorRT-LLM's ``LoRARequest`` of the config's adapter (tensorrt_llm/executor/request.py), or None."""
    args = lora_request_args(config)
    if args is None:
        return None
    from tensorrt_llm.executor.request import LoRARequest

    return LoRARequest(*args)


def _api_objects(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The LLM API arguments with the nested dicts of ``tensorrt_args`` turned into its config objects."""
    from tensorrt_llm.llmapi import BuildConfig, CalibConfig, KvCacheConfig, QuantAlgo, QuantConfig
    from tensorrt_llm.lora_manager import LoraConfig  # 1.0.0's home of LoraConfig (later: lora_helper)

    out = dict(kwargs)
    if "lora_config" in out:
        out["lora_config"] = LoraConfig(**out["lora_config"])
    if "build_config" in out:
        fields = dict(out["build_config"])
        plugins = fields.pop("plugin_config", {})
        if "lora_config" in fields:
            fields["lora_config"] = LoraConfig(**fields["lora_config"])
        build_config = BuildConfig(**fields)
        for name, value in plugins.items():
            setattr(build_config.plugin_config, name, value)
        out["build_config"] = build_config
    if "kv_cache_config" in out:
        out["kv_cache_config"] = KvCacheConfig(**out["kv_cache_config"])
    if "quant_config" in out:
        out["quant_config"] = QuantConfig(quant_algo=QuantAlgo[out["quant_config"]["quant_algo"]])
    if "calib_config" in out:
        out["calib_config"] = CalibConfig(**out["calib_config"])
    return out


def _gpu_capability() -> tuple[tuple[int, int], str]:
    """The lowest compute capability among the visible GPUs, and that GPU's name."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise EngineUnavailableError(
            "TensorRT-LLM needs an NVIDIA GPU and none is visible in this container: "
            "check the gpus list and the NVIDIA container toolkit"
        )
    found = [
        (tuple(torch.cuda.get_device_capability(i)), torch.cuda.get_device_name(i))
        for i in range(torch.cuda.device_count())
    ]
    (major, minor), name = min(found)
    return (int(major), int(minor)), str(name)


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as e:
        logger.debug("cuda cache release: %s", e)
