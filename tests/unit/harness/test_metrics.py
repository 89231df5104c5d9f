"""Metric arithmetic on known inputs: token counts, throughput, percentiles, energy figures."""

from __future__ import annotations

import pytest

from lem_harness.engines.base import BatchResult, Generation
from lem_harness.measure import WindowEnergy
from lem_harness.metrics import energy_metrics, energy_source, inference_metrics


def _window(
    counter: dict[str, float] | None, integral: dict[str, float] | None, seconds: float
) -> WindowEnergy:
    return WindowEnergy(
        name="measure",
        start_s=5.0,
        end_s=5.0 + seconds,
        duration_s=seconds,
        counter_energy_j=counter,
        integrated_energy_j=integral,
        sample_count=90,
        expected_samples=100,
        coverage=0.9,
        cpu_energy_j=12.5,
        throttle_reasons_seen=0,
    )


def test_inference_metrics_counts_tokens_and_separates_output_from_total_throughput() -> None:
    batches = [
        BatchResult([Generation(10, 4, latency_s=1.0), Generation(6, 8, latency_s=1.0)], latency_s=1.0),
        BatchResult([Generation(4, 20, latency_s=3.0)], latency_s=3.0),
    ]
    m = inference_metrics(batches, duration_s=4.0, peak_memory_bytes=123)
    assert (m.num_prompts, m.num_batches, m.input_tokens, m.output_tokens) == (3, 2, 20, 32)
    assert m.output_tokens_per_s == 8.0
    assert m.total_tokens_per_s == 13.0
    # two batch latencies 1 and 3: linear interpolation
    assert m.batch_latency_p50_s == 2.0
    assert m.batch_latency_p90_s == pytest.approx(2.8, rel=1e-12)
    assert m.batch_latency_p99_s == pytest.approx(2.98, rel=1e-12)
    assert m.request_latency_p50_s == 1.0  # [1, 1, 3]
    assert m.peak_memory_bytes == 123
    assert m.ttft_mean_s is None and m.itl_p50_s is None


def test_streaming_fields_come_from_per_token_times() -> None:
    gens = [
        Generation(3, 3, latency_s=0.5, ttft_s=0.1, itl_s=(0.2, 0.2)),
        Generation(3, 2, latency_s=0.4, ttft_s=0.3, itl_s=(0.1,)),
    ]
    m = inference_metrics([BatchResult(gens, latency_s=0.5)], duration_s=1.0)
    assert m.ttft_mean_s == pytest.approx(0.2, rel=1e-12)
    assert m.ttft_p50_s == pytest.approx(0.2, rel=1e-12)
    assert m.itl_mean_s == pytest.approx(0.5 / 3, rel=1e-12)
    assert m.itl_p50_s == 0.2
    assert m.request_latency_p99_s == pytest.approx(0.499, rel=1e-12)


def test_energy_metrics_from_a_counter_window() -> None:
    window = _window({"GPU-a": 100.0, "GPU-b": 50.0}, {"GPU-a": 99.0, "GPU-b": 52.0}, seconds=10.0)
    e = energy_metrics(window, "nvml", idle=(20.0, "deep"), output_tokens=300)
    assert e.energy_source == "nvml_counter"
    assert e.gross_energy_j == 150.0
    assert e.integrated_energy_j == 151.0
    assert e.counter_vs_integral_pct == pytest.approx(100 / 150, rel=1e-12)
    assert e.adjusted_energy_j == 150.0 - 20.0 * 10.0  # gross - P_idle x window, may be negative
    assert e.window_duration_s == 10.0
    assert e.avg_power_w == 15.0
    assert e.energy_per_output_token_j == 0.5
    assert e.adjusted_energy_per_output_token_j == pytest.approx(-50.0 / 300, rel=1e-12)
    assert e.output_tokens_per_j == 2.0
    assert (e.cpu_energy_j, e.sample_coverage) == (12.5, 0.9)
    assert [(g.gpu_uuid, g.counter_energy_j, g.integrated_energy_j) for g in e.per_gpu] == [
        ("GPU-a", 100.0, 99.0),
        ("GPU-b", 50.0, 52.0),
    ]


def test_without_a_counter_the_integral_is_the_headline() -> None:
    e = energy_metrics(_window(None, {"GPU-a": 80.0}, seconds=4.0), "nvml", idle=None, output_tokens=40)
    assert e.energy_source == "power_integral"
    assert (e.gross_energy_j, e.counter_vs_integral_pct, e.adjusted_energy_j) == (80.0, None, None)
    assert e.energy_per_output_token_j == 2.0


def test_simulated_device_is_labelled_simulated() -> None:
    window = _window({"GPU-SIMULATED-0": 10.0}, None, seconds=1.0)
    assert energy_source("simulated", window) == "simulated"
    assert energy_metrics(window, "simulated", (1.0, "deep"), 10).energy_source == "simulated"


def test_no_sensor_gives_null_energy_never_zero() -> None:
    e = energy_metrics(_window(None, None, seconds=3.0), None, idle=None, output_tokens=10)
    assert e.energy_source == "none"
    assert e.window_duration_s == 3.0
    dumped = e.model_dump(exclude={"energy_source", "window_duration_s", "per_gpu", "power_read_failures"})
    assert set(dumped.values()) == {None}


def test_zero_output_tokens_gives_null_per_token_figures() -> None:
    e = energy_metrics(_window({"GPU-a": 10.0}, None, seconds=1.0), "nvml", (1.0, "deep"), output_tokens=0)
    assert (e.energy_per_output_token_j, e.output_tokens_per_j) == (None, None)
    assert e.gross_energy_j == 10.0
