"""The local time zone as a zoneinfo zone (DST rules included), for schedules and time-of-day results.

``$TZ`` when it names a zone (``Europe/London``), else ``/etc/localtime``, else UTC. A
fixed-offset ``datetime.now().astimezone()`` zone would get every daylight-saving change wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCALTIME = Path("/etc/localtime")


class ZoneError(ValueError):
    """``$TZ`` names no known time zone."""


def local_zone(env: Mapping[str, str] | None = None, localtime: Path = LOCALTIME) -> tuple[ZoneInfo, str]:
    """The zone and its name (``"Europe/London"``; ``"localtime"`` when only the file is known)."""
    name = (os.environ if env is None else env).get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            raise ZoneError(f"TZ={name!r} is not a known time zone (use a name like Europe/London)") from None
    if localtime.is_file():
        key = _zone_key(localtime)
        with localtime.open("rb") as handle:
            return ZoneInfo.from_file(handle, key=key), key or "localtime"
    return ZoneInfo("UTC"), "UTC"


def _zone_key(localtime: Path) -> str | None:
    """``Europe/London`` from a ``/etc/localtime -> /usr/share/zoneinfo/Europe/London`` link."""
    target = str(localtime.resolve())
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None
