"""RAPL package energy against a fabricated powercap tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem_harness.devices.base import DeviceUnavailableError
from lem_harness.devices.rapl import RaplReader

MAX_RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def make_zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int = MAX_RANGE_UJ) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{label}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type directory: not a zone
    make_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    make_zone(root, "intel-rapl:0:0", "core", 777_000_000)  # a subzone: not counted
    make_zone(root, "intel-rapl:1", "package-1", 2_500_000)
    return root


def test_sums_package_zones_only(powercap: Path) -> None:
    reader = RaplReader(powercap)
    assert reader.available()
    assert reader.zone_names() == ["package-0", "package-1"]
    assert reader.read_energy_j() == 3.5


def test_accumulates_deltas(powercap: Path) -> None:
    reader = RaplReader(powercap)
    reader.read_energy_j()
    set_energy(powercap / "intel-rapl:0", 4_000_000)
    set_energy(powercap / "intel-rapl:1", 2_600_000)
    assert reader.read_energy_j() == 6.6


def test_wrap_around_is_counted_once_between_reads(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, max_uj=1_000_000_000)
    reader = RaplReader(tmp_path)
    assert reader.read_energy_j() == 999.0
    set_energy(zone, 500_000)  # wrapped: 1_000_000 µJ to the top, then 500_000 µJ
    assert reader.read_energy_j() == 1000.5
    set_energy(zone, 2_500_000)
    assert reader.read_energy_j() == 1002.5


def test_zones_are_ordered_numerically(tmp_path: Path) -> None:
    for n in (10, 2):
        make_zone(tmp_path, f"intel-rapl:{n}", f"package-{n}", n)
    assert RaplReader(tmp_path).zone_names() == ["package-2", "package-10"]


def test_missing_root_is_unavailable(tmp_path: Path) -> None:
    reader = RaplReader(tmp_path / "nope")
    assert not reader.available()
    assert "does not exist" in (reader.unavailable_reason or "")
    with pytest.raises(DeviceUnavailableError, match="RAPL unavailable"):
        reader.read_energy_j()


def test_root_without_package_zones_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "intel-rapl").mkdir()
    reader = RaplReader(tmp_path)
    assert not reader.available()
    assert "no intel-rapl:N package zone" in (reader.unavailable_reason or "")


def test_unreadable_counter_is_unavailable(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # reading it fails like a root-only file would
    reader = RaplReader(tmp_path)
    assert not reader.available()
    assert "not readable" in (reader.unavailable_reason or "")


def test_counter_vanishing_after_discovery_raises(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    reader = RaplReader(tmp_path)
    (zone / "energy_uj").unlink()
    with pytest.raises(DeviceUnavailableError, match="energy_uj"):
        reader.read_energy_j()
