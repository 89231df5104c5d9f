"""The progress display: ETA arithmetic, formatting, and the live bar's final state."""

from __future__ import annotations

import io

from rich.console import Console

from lem.campaign.clock import FakeClock
from lem.campaign.manifest import RunEntry
from lem.campaign.plan import PlannedRun
from lem.campaign.progress import EtaEstimator, RichProgress, format_duration, result_figures
from lem_harness.contract import RunResult


def run(run_id: str, config_id: str, gap: float) -> PlannedRun:
    return PlannedRun(
        run_id=run_id,
        cycle=int(run_id[-1]),
        position=1,
        config_id=config_id,
        name=config_id,
        backend="pytorch",
        axis_values={},
        gap_before_s=gap,
        gap_kind="config",
    )


A1, B1, A2, B2 = run("A-c1", "A", 0.0), run("B-c1", "B", 5.0), run("A-c2", "A", 30.0), run("B-c2", "B", 5.0)


def test_eta_counts_each_configurations_mean_duration_and_the_gaps_left() -> None:
    eta = EtaEstimator([A1, B1, A2, B2])
    assert eta.eta_s() is None  # nothing finished: no basis for an estimate
    eta.started(A1)
    eta.finished(A1, 20.0)
    # B1 (no mean of B yet: the overall mean, 20) + A2 (20) + B2 (20) + gaps 5 + 30 + 5
    assert eta.eta_s() == 100.0
    eta.started(B1)
    assert eta.eta_s() == 95.0  # B1's gap is behind it
    eta.finished(B1, 40.0)
    assert eta.eta_s() == 20.0 + 40.0 + 30.0 + 5.0  # A2 at A's mean, B2 at B's mean, two gaps
    eta.finished(A2, 30.0)  # A's mean becomes 25; A2's gap and duration are gone
    assert eta.eta_s() == 40.0 + 5.0
    eta.finished(B2, 40.0)
    assert eta.eta_s() == 0.0


def test_a_run_reported_twice_is_counted_once() -> None:
    eta = EtaEstimator([A1, A2])
    eta.finished(A1, 10.0)
    eta.finished(A1, 30.0)  # a retry of the same run
    assert eta.eta_s() == 20.0 + 30.0  # A2 at A's mean of 10 and 30, plus its gap


def test_durations_and_figures_are_formatted_for_people() -> None:
    assert [format_duration(s) for s in (None, 0.4, 59.6, 61.0, 3_725.0)] == [
        "?",
        "0:00",
        "1:00",
        "1:01",
        "1:02:05",
    ]
    result = RunResult.model_validate(
        {
            "run_id": "A-c1",
            "config_id": "A",
            "config_name": "A",
            "cycle": 1,
            "backend": "pytorch",
            "status": "ok",
            "started_at": "t0",
            "finished_at": "t1",
        }
    )
    assert result_figures(result) == "? J/token, ? tok/s"
    assert result_figures(None) == "no result"


def test_the_live_bar_ends_showing_every_run_and_the_last_figures() -> None:
    clock = FakeClock()
    buffer = io.StringIO()
    bar = RichProgress(clock, Console(file=buffer, force_terminal=True, width=160, color_system=None))
    bar.campaign_started(2, 0, [A1, B1])
    for planned in (A1, B1):
        bar.run_started(planned, 1)
        clock.advance(10.0)
        entry = RunEntry(
            run_id=planned.run_id,
            position=1,
            cycle=1,
            config_id=planned.config_id,
            name=planned.name,
            backend="pytorch",
            status="done",
            duration_s=10.0,
        )
        bar.run_finished(planned, entry, None)
    bar.campaign_finished()
    text = buffer.getvalue()
    final = text[text.rindex("B cycle 1") :].splitlines()[0]  # the last frame drawn
    assert "2/2" in final
    assert "eta 0:00" in final
    assert final.rstrip().endswith("no result")
