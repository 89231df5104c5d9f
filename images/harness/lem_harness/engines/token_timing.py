"""Per-token timing of streamed requests, shared by the engines that stream (framework-free)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from lem_harness.engines.base import Generation


@dataclass
class TokenClock:
    """Arrival times of one streamed request's tokens, as the engine hands them over.

    Several tokens can arrive in one delivery (a multi-token step): they share its time,
    so the gap before each extra token is 0 — what a streaming client observes.
    """

    input_tokens: int = 0
    times: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def record(self, new_tokens: int, at: float, ids: Sequence[int] = ()) -> None:
        self.times.extend([at] * new_tokens)
        self.ids.extend(ids)

    def generation(self, start: float) -> Generation:
        """TTFT, end-to-end latency and the gap before every later token, from ``start``."""
        if not self.times:
            return Generation(input_tokens=self.input_tokens, output_tokens=0)
        return Generation(
            input_tokens=self.input_tokens,
            output_tokens=len(self.times),
            latency_s=self.times[-1] - start,
            ttft_s=self.times[0] - start,
            itl_s=tuple(b - a for a, b in itertools.pairwise(self.times)),
            output_ids=tuple(self.ids),
        )
