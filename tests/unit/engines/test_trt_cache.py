"""The TensorRT-LLM engine cache: keying, reuse, force_rebuild, key change, atomic publish, GPU refusal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lem_harness.engines.base import EngineUnavailableError
from lem_harness.engines.trt_cache import (
    MANIFEST,
    STALE_AFTER_S,
    ComputeCapabilityError,
    EngineCache,
    EngineCacheError,
    cache_key,
    check_compute_capability,
    model_fingerprint,
    parse_compute_capability,
)

PARAMS = {"dtype": "float16", "build_config": {"max_batch_size": 8}}


class FakeBuilder:
    """Writes a recognisable engine file and counts its builds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, out_dir: Path) -> None:
        self.calls += 1
        (out_dir / "rank0.engine").write_text(f"engine build {self.calls}")


def test_key_is_stable_and_sensitive_to_each_part() -> None:
    key = cache_key("org/m", PARAMS, "1.0.0", "9.0")
    assert key == cache_key("org/m", dict(reversed(list(PARAMS.items()))), "1.0.0", "9.0")
    assert len(key) == 20
    others = {
        cache_key("org/other", PARAMS, "1.0.0", "9.0"),
        cache_key("org/m", {**PARAMS, "dtype": "bfloat16"}, "1.0.0", "9.0"),
        cache_key("org/m", PARAMS, "1.1.0", "9.0"),
        cache_key("org/m", PARAMS, "1.0.0", "8.9"),
    }
    assert key not in others and len(others) == 4


def test_first_call_builds_then_reuses(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), FakeBuilder()
    first = cache.get_or_build("k1", build, details={"sm": "9.0"})
    second = cache.get_or_build("k1", build)
    assert (first.hit, second.hit, build.calls) == (False, True, 1)
    assert first.path == second.path == tmp_path / "k1"
    assert (first.path / "rank0.engine").read_text() == "engine build 1"
    assert json.loads((first.path / MANIFEST).read_text()) == {"key": "k1", "sm": "9.0"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1"]  # no temporary directory left


def test_force_rebuild_replaces_the_cached_engine(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), FakeBuilder()
    cache.get_or_build("k1", build)
    again = cache.get_or_build("k1", build, force_rebuild=True)
    assert (again.hit, build.calls) == (False, 2)
    assert (again.path / "rank0.engine").read_text() == "engine build 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1"]


def test_key_change_builds_a_new_engine_beside_the_old(tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), FakeBuilder()
    cache.get_or_build(cache_key("m", PARAMS, "1.0.0", "8.0"), build)
    new = cache.get_or_build(cache_key("m", PARAMS, "1.0.0", "9.0"), build)
    assert (new.hit, build.calls) == (False, 2)
    assert len(list(tmp_path.iterdir())) == 2


def test_failed_build_publishes_nothing(tmp_path: Path) -> None:
    def broken(out_dir: Path) -> None:
        (out_dir / "partial.engine").write_text("half")
        raise RuntimeError("builder crashed")

    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build("k1", broken)
    assert cache.lookup("k1") is None
    assert list(tmp_path.iterdir()) == []


def test_directory_without_manifest_is_not_an_engine(tmp_path: Path) -> None:
    (tmp_path / "k1").mkdir()
    (tmp_path / "k1" / "rank0.engine").write_text("unknown origin")
    build = FakeBuilder()
    result = EngineCache(tmp_path).get_or_build("k1", build)
    assert (result.hit, build.calls) == (False, 1)
    assert (result.path / "rank0.engine").read_text() == "engine build 1"


def test_stale_temporary_directories_are_removed_only_when_old(tmp_path: Path) -> None:
    old, young = tmp_path / ".tmp-k1-aaaa", tmp_path / ".tmp-k1-bbbb"
    old.mkdir()
    young.mkdir()
    past = time.time() - STALE_AFTER_S - 60
    os.utime(old, (past, past))
    EngineCache(tmp_path).get_or_build("k1", FakeBuilder())
    assert not old.exists() and young.exists()


def test_unwritable_cache_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EngineCacheError, match="not writable"):
        EngineCache(blocker / "cache").get_or_build("k1", FakeBuilder())


def test_model_fingerprint_tracks_local_files(tmp_path: Path) -> None:
    assert model_fingerprint("org/hub-model") == "org/hub-model"
    (tmp_path / "config.json").write_text("{}")
    first = model_fingerprint(str(tmp_path))
    assert first.startswith(f"{tmp_path}@") and model_fingerprint(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_text("weights")
    assert model_fingerprint(str(tmp_path)) != first


@pytest.mark.parametrize(("text", "value"), [("8.9", (8, 9)), ("9.0", (9, 0)), ("10", (10, 0))])
def test_parse_compute_capability(text: str, value: tuple[int, int]) -> None:
    assert parse_compute_capability(text) == value


def test_capable_gpu_passes() -> None:
    needs = [("tensorrt.quantization fp8", (8, 9)), ("fp_precision bfloat16", (8, 0))]
    check_compute_capability((8, 9), needs)


def test_old_gpu_is_refused_with_every_reason() -> None:
    needs = [("tensorrt.quantization fp8", (8, 9)), ("fp_precision bfloat16", (8, 0))]
    with pytest.raises(ComputeCapabilityError) as info:
        check_compute_capability((7, 5), needs, "Tesla T4")
    message = str(info.value)
    assert message.startswith("Tesla T4 has compute capability 7.5: ")
    assert "tensorrt.quantization fp8 needs compute capability >= 8.9" in message
    assert "fp_precision bfloat16 needs compute capability >= 8.0" in message
    assert isinstance(info.value, EngineUnavailableError)


def test_ampere_cannot_run_fp8_but_runs_awq() -> None:
    check_compute_capability((8, 0), [("tensorrt.quantization int4_awq", (8, 0))])
    with pytest.raises(ComputeCapabilityError, match=r"fp8 needs compute capability >= 8\.9"):
        check_compute_capability((8, 6), [("tensorrt.quantization fp8", (8, 9))])
