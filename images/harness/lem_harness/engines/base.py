"""The engine verbs. The runner owns measurement; an engine owns inference only.

Every engine module is the only importer of its framework and imports it lazily
(inside ``load_tokenizer``/``load``), so that ``lem_harness`` imports anywhere.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lem_harness.experiment import ExperimentConfig

if TYPE_CHECKING:
    from lem_harness.engines.arrivals import Served

EngineArg = str | int | float | bool | None


class EngineUnavailableError(RuntimeError):
    """The engine's framework is not installed here (wrong image)."""


@dataclass(frozen=True)
class Generation:
    """One request's outcome; token counts come from the engine's token ids."""

    input_tokens: int
    output_tokens: int
    latency_s: float | None = None  # request end-to-end, where the engine reports it
    ttft_s: float | None = None  # streaming only
    itl_s: tuple[float, ...] = ()  # streaming only: gap before each token after the first
    output_ids: tuple[int, ...] = ()  # the generated token ids (saved with save_outputs)


@dataclass(frozen=True)
class SpeculativeCounts:
    """Speculative decoding in one batch: drafting steps, draft tokens proposed, draft tokens accepted."""

    drafts: int
    draft_tokens: int
    accepted_tokens: int

    def __add__(self, other: SpeculativeCounts) -> SpeculativeCounts:
        return SpeculativeCounts(
            self.drafts + other.drafts,
            self.draft_tokens + other.draft_tokens,
            self.accepted_tokens + other.accepted_tokens,
        )

    def __sub__(self, other: SpeculativeCounts) -> SpeculativeCounts:
        return SpeculativeCounts(
            self.drafts - other.drafts,
            self.draft_tokens - other.draft_tokens,
            self.accepted_tokens - other.accepted_tokens,
        )


@dataclass(frozen=True)
class BatchResult:
    generations: list[Generation]
    latency_s: float  # wall time of the whole batch (host clock, after synchronise)
    speculative: SpeculativeCounts | None = None  # engines that decode speculatively


@dataclass
class SetupInfo:
    """What an engine reports about its setup (TensorRT-LLM engine build, cache)."""

    built: bool = False
    engine_cache_hit: bool | None = None
    notes: list[str] = field(default_factory=list)


class Tokenizer(ABC):
    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without padding or truncation."""

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def special_ids(self) -> frozenset[int]: ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated token ids, special tokens left out (``decode_token_to_text``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot decode token ids to text")


class Engine(ABC):
    """load_tokenizer → build → load → plan_batches/generate … → close."""

    name: str = ""
    version_packages: tuple[str, ...] = ()  # distributions whose versions go into provenance

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self._notes: list[str] = []

    @abstractmethod
    def load_tokenizer(self) -> Tokenizer:
        """The model's tokenizer, loadable before the model (for prompt preparation)."""

    def build(self) -> SetupInfo:
        """Compile or fetch a cached engine before loading (TensorRT-LLM); default: nothing."""
        return SetupInfo()

    @abstractmethod
    def load(self) -> None:
        """Load weights onto the device."""

    @abstractmethod
    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """Indices of ``prompts`` grouped into the batches this engine will run."""

    @abstractmethod
    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        """Generate for one batch of token-id prompts; returns after a device synchronise."""

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        """``generate`` with exactly one output token per prompt (``measurement.phase_split``)."""
        raise EngineUnavailableError(
            f"the {self.name or type(self).__name__} engine has no prefill-only pass: "
            "set measurement.phase_split: false"
        )

    def serve(
        self,
        prompts: Sequence[Sequence[int]],
        offsets: Sequence[float],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> Served:
        """Serve ``prompts`` as they arrive, request ``i`` at ``offsets[i]`` s (``traffic_simulation``)."""
        raise EngineUnavailableError(
            f"the {self.name or type(self).__name__} engine has no traffic simulation: "
            "set traffic_simulation.enabled: false"
        )

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for all queued device work (called before energy counters are read)."""

    @abstractmethod
    def close(self) -> None:
        """Release every device byte and worker process. Idempotent."""

    def peak_memory_bytes(self) -> int | None:
        return None

    def reset_prefix_cache(self) -> bool | None:
        """Drop cached KV blocks shared across requests (prefix caching, block reuse), between
        warmup and the measured window. True: reset; False: a cache exists and could not be
        reset; None (default): the engine keeps no cache across requests."""
        return None

    def effective_args(self) -> dict[str, EngineArg]:
        """The settings the engine actually runs with, as it reports them after ``load``."""
        return {}

    def reset_peak_memory(self) -> None:
        return None

    def versions(self) -> dict[str, str]:
        """Versions of the framework packages this engine uses (those installed here)."""
        return installed_versions(self.version_packages)

    def notes(self) -> list[str]:
        """How the engine departed from the config (e.g. a dtype fallback), for the result's warnings."""
        return list(self._notes)


def installed_versions(packages: Sequence[str]) -> dict[str, str]:
    """``{distribution: version}`` for each of ``packages`` that is installed."""
    found: dict[str, str] = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def module_available(name: str) -> bool:
    """Whether the top-level module ``name`` is installed, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
