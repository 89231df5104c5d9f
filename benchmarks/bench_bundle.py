"""Size and time of the offline bundle, both sides of the air gap, CPU flavour (real Docker).

    .venv/bin/python benchmarks/bench_bundle.py [--backend pytorch] [--keep-cache]

Connected side: ``make_bundle`` from ``lem/debian-bookworm:base`` (under a tag of this script's
own) and the wheelhouse (``scripts/build_wheelhouse.sh``; its download is skipped while the
requirements are unchanged). Isolated side: ``build_from_bundle`` from a copy of ``images/``
with no wheelhouse, the build's network off, Docker's layer cache unused unless --keep-cache.
Phases are timed from the progress lines. Everything it creates is removed at the end.
Figures: benchmarks/README.md ("Issue 16").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "orchestrator"), str(REPO / "images" / "harness")]

from lem.runtime.bundle import BundleBuild, BundleRequest, build_from_bundle, make_bundle  # noqa: E402
from lem.runtime.docker import DockerRuntime  # noqa: E402
from lem.runtime.wheelhouse import script_wheelhouse  # noqa: E402

BASE = "lem/debian-bookworm:base"


class Clock:
    """Progress lines with the seconds since start; phase = time between two marker lines."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[float, str]] = []

    def line(self, text: str) -> None:
        self.marks.append((time.monotonic() - self.start, text))

    def at(self, prefix: str) -> float:
        return next(t for t, text in self.marks if text.startswith(prefix))


def sizes(bundle: Path) -> dict[str, int]:
    out = {"bases": 0, "wheels": 0, "manifest": 0}
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            kind = "bases" if member.name.startswith("bases/") else "wheels"
            out["manifest" if member.name == "manifest.json" else kind] += member.size
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="pytorch")
    parser.add_argument("--keep-cache", action="store_true")
    args = parser.parse_args()
    runtime = DockerRuntime()
    repository = f"lem-bench-{uuid.uuid4().hex[:8]}"
    base_tag = f"{repository}/debian:base"
    runtime.client.images.get(BASE).tag(base_tag)
    work = Path(tempfile.mkdtemp(prefix="lem-bench-bundle-"))
    build_lines: list[str] = []
    try:
        bundle = work / "lem-bundle.tar"
        connected = Clock()
        request = BundleRequest(REPO, bundle, (args.backend,), "cpu", base_tag)
        manifest = make_bundle(request, runtime, script_wheelhouse(REPO), connected.line)
        bundle_s = time.monotonic() - connected.start
        runtime.client.images.remove(base_tag)
        isolated = work / "isolated"
        shutil.copytree(REPO / "images", isolated / "images", ignore=shutil.ignore_patterns("__pycache__"))
        staging = work / "staging"
        staging.mkdir()
        side = Clock()

        def on_line(text: str) -> None:
            side.line(text)
            build_lines.append(text)

        build = BundleBuild(bundle, isolated, staging, (args.backend,), repository, not args.keep_cache)
        built = build_from_bundle(build, runtime, on_line)
        build_s = time.monotonic() - side.start
        image_size = runtime.client.images.get(next(iter(built))).attrs["Size"]
        report = {
            "backend": args.backend,
            "files": len(manifest.files),
            "bundle_bytes": bundle.stat().st_size,
            **{f"{k}_bytes": v for k, v in sizes(bundle).items()},
            "bundle_s": round(bundle_s, 1),
            "verify_unpack_s": round(side.at("[bundle] docker load"), 1),
            "load_and_checks_s": round(side.at("[bundle] building") - side.at("[bundle] docker load"), 1),
            "offline_build_s": round(build_s - side.at("[bundle] building"), 1),
            "isolated_total_s": round(build_s, 1),
            "image_bytes": image_size,
            "layer_cache": args.keep_cache,
        }
        print(json.dumps(report, indent=2))
    finally:
        with contextlib.suppress(Exception):
            runtime.client.images.remove(f"{repository}/{args.backend}:cpu")
        with contextlib.suppress(Exception):
            runtime.client.images.remove(base_tag)
        for image_id in dict.fromkeys(re.findall(r"^ ---> ([0-9a-f]{12})$", "\n".join(build_lines), re.M)):
            with contextlib.suppress(Exception):
                if not runtime.client.images.get(image_id).tags:  # this build's own stage images only
                    runtime.client.images.remove(image_id)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
