"""The TensorRT-LLM engine cache: one directory per key, published atomically (no tensorrt_llm import).

An engine is only valid for the model, build parameters, TensorRT-LLM version and GPU
architecture it was built for, so the key hashes all four. A cached engine is reused
while its key matches; ``force_rebuild`` or any change of the key builds a new one. A
build writes into a temporary directory beside the cache entries, records its manifest
(``lem-engine.json``, the completeness marker) last, and renames the directory into place,
so a reader never sees a half-written engine; a killed build leaves only a ``.tmp-``
directory, which a later build of that key removes once it is hours old.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lem_harness.engines.base import EngineUnavailableError

MANIFEST = "lem-engine.json"
KEY_LENGTH = 20
STALE_AFTER_S = 6 * 3600.0  # longer than any engine build


class EngineCacheError(RuntimeError):
    """The engine cache cannot be used (unwritable directory, failed build)."""


class ComputeCapabilityError(EngineUnavailableError):
    """This GPU's architecture cannot run a requested setting (e.g. fp8 before compute capability 8.9)."""


def parse_compute_capability(value: str) -> tuple[int, int]:
    major, _, minor = value.partition(".")
    return int(major), int(minor or 0)


def check_compute_capability(
    capability: tuple[int, int], needs: Iterable[tuple[str, tuple[int, int]]], gpu_name: str = "this GPU"
) -> None:
    """Raise ComputeCapabilityError naming every setting the GPU cannot run and what to do."""
    failing = [(what, need) for what, need in needs if capability < need]
    if not failing:
        return
    have = f"{capability[0]}.{capability[1]}"
    lines = [f"{what} needs compute capability >= {need[0]}.{need[1]}" for what, need in failing]
    raise ComputeCapabilityError(
        f"{gpu_name} has compute capability {have}: "
        + "; ".join(lines)
        + ". Choose a setting this GPU supports (e.g. tensorrt.quantization: none, fp_precision: float16) "
        "or run on a newer GPU."
    )


def model_fingerprint(model: str) -> str:
    """The model reference, plus the names, sizes and mtimes of its files when it is a local directory."""
    path = Path(model)
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"{model}@{digest.hexdigest()[:16]}"


def cache_key(
    model: str, build_params: Mapping[str, Any], trt_llm_version: str, compute_capability: str
) -> str:
    """Stable hex key of (model fingerprint, build parameters, TensorRT-LLM version, compute capability)."""
    canonical = json.dumps(
        {"model": model, "build": build_params, "tensorrt_llm": trt_llm_version, "sm": compute_capability},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class CachedEngine:
    path: Path
    key: str
    hit: bool  # True: reused from the cache; False: built by this call


class EngineCache:
    """Engine directories under ``root``, one per key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        """The complete engine directory of ``key``, or None."""
        manifest = self.entry(key) / MANIFEST
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return self.entry(key) if recorded.get("key") == key else None

    def get_or_build(
        self,
        key: str,
        build: Callable[[Path], None],
        *,
        force_rebuild: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> CachedEngine:
        """Reuse the engine of ``key``, or call ``build(tmp_dir)`` and publish what it wrote."""
        if not force_rebuild:
            found = self.lookup(key)
            if found is not None:
                return CachedEngine(found, key, hit=True)
        return CachedEngine(self._build(key, build, details or {}), key, hit=False)

    def _build(self, key: str, build: Callable[[Path], None], details: Mapping[str, Any]) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EngineCacheError(f"engine cache {self.root} is not writable ({e.strerror or e})") from e
        self._clear_stale(key)
        tmp = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            manifest = {"key": key, **details}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
            return self._publish(key, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _publish(self, key: str, tmp: Path) -> Path:
        final = self.entry(key)
        old = self.root / f".old-{key}-{uuid.uuid4().hex[:8]}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def _clear_stale(self, key: str) -> None:
        """Remove what a killed build of ``key`` left behind (a build still running is younger)."""
        cutoff = time.time() - STALE_AFTER_S
        for prefix in (".tmp-", ".old-"):
            for stale in self.root.glob(f"{prefix}{key}-*"):
                if stale.stat().st_mtime < cutoff:
                    shutil.rmtree(stale, ignore_errors=True)
