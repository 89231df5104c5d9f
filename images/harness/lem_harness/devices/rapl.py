"""CPU package energy from RAPL through the powercap sysfs tree.

Each package zone ``<root>/intel-rapl:N`` has ``energy_uj`` (a counter in µJ that wraps
to 0 after ``max_energy_range_uj``) and ``name`` (``package-N``). AMD CPUs on recent
kernels expose the same layout. ``energy_uj`` is root-only on many systems since 2020
(CVE-2020-8694); then ``available()`` is False and says why.

The reader accumulates deltas between reads, so a wrap between two reads is counted
once. It cannot see two wraps between reads: read it at least once per wrap period
(``max_energy_range_uj`` / package power — minutes at full load). ``EnergyMeter``
registers it on the sampler's tick for that reason. Thread-safe.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lem_harness.devices.base import DeviceUnavailableError

POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


@dataclass
class _Zone:
    path: Path
    max_range_uj: int
    last_raw_uj: int | None = None
    total_uj: int = 0


class RaplReader:
    """Cumulative CPU package energy (J) summed over every package zone."""

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        self.root = root
        self.unavailable_reason: str | None = None
        self._lock = threading.Lock()
        self._zones = self._discover()

    def _discover(self) -> list[_Zone]:
        if not self.root.is_dir():
            self.unavailable_reason = f"{self.root} does not exist (no powercap / RAPL on this machine)"
            return []
        paths = sorted(
            (p for p in self.root.iterdir() if _PACKAGE_ZONE.match(p.name)),
            key=lambda p: int(p.name.split(":")[1]),
        )
        if not paths:
            self.unavailable_reason = f"no intel-rapl:N package zone under {self.root}"
            return []
        try:
            zones = [_Zone(path, int(_read(path / "max_energy_range_uj"))) for path in paths]
            for zone in zones:
                _read(zone.path / "energy_uj")
        except (OSError, ValueError) as e:
            self.unavailable_reason = f"RAPL is not readable ({e}); energy_uj is root-only on many systems"
            return []
        return zones

    def available(self) -> bool:
        return bool(self._zones)

    def zone_names(self) -> list[str]:
        """The zones' ``name`` files (``package-0`` …), for provenance."""
        return [
            _read(zone.path / "name").strip() if (zone.path / "name").exists() else zone.path.name
            for zone in self._zones
        ]

    def read_energy_j(self) -> float:
        """Cumulative package energy in joules, wrap-safe between consecutive reads."""
        if not self._zones:
            raise DeviceUnavailableError(f"RAPL unavailable: {self.unavailable_reason}")
        with self._lock:
            total_uj = 0
            for zone in self._zones:
                try:
                    raw = int(_read(zone.path / "energy_uj"))
                except (OSError, ValueError) as e:
                    raise DeviceUnavailableError(f"reading {zone.path / 'energy_uj'} failed: {e}") from e
                _advance(zone, raw)
                total_uj += zone.total_uj
        return total_uj / 1e6


def _advance(zone: _Zone, raw_uj: int) -> None:
    """Add the energy since the last read; a smaller reading means the counter wrapped once."""
    if zone.last_raw_uj is None:
        zone.total_uj = raw_uj
    elif raw_uj >= zone.last_raw_uj:
        zone.total_uj += raw_uj - zone.last_raw_uj
    else:
        zone.total_uj += zone.max_range_uj - zone.last_raw_uj + raw_uj
    zone.last_raw_uj = raw_uj


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii")
