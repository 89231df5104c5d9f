"""Does a wheel (or a .deb) fit an image's Python and CPU architecture? Read from its file name.

A wheel's name ends ``-{python tag}-{abi tag}-{platform tag}.whl``, each tag possibly a
``.``-joined set (PEP 425). It fits CPython ``cpXY`` on ``arch`` when some (python, abi) pair
fits — ``pyN``/``none`` (pure), ``cpXY``/``cpXY`` (this interpreter), ``cpAB``/``abi3`` with
``AB <= XY`` — and some platform is ``any`` or ends in ``_<arch>``. A Debian package
``name_version_<arch>.deb`` fits when its architecture is this one or ``all``.
"""

from __future__ import annotations

import re

ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64", "arm64v8": "aarch64"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def normalise_arch(arch: str) -> str:
    """Docker's ``amd64`` and the kernel's ``x86_64`` name the same machine."""
    lowered = arch.lower()
    return ARCH_ALIASES.get(lowered, lowered)


def _cpython_version(tag: str) -> tuple[int, int] | None:
    found = re.fullmatch(r"cp(\d)(\d+)", tag)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _python_fits(python: str, abi: str, target: tuple[int, int]) -> bool:
    if abi == "none":
        return python in ("py3", f"py{target[0]}{target[1]}") or _cpython_version(python) == target
    version = _cpython_version(python)
    if abi == "abi3":
        return version is not None and version[0] == target[0] and version <= target
    return version == target and abi in (python, f"{python}m")


def wheel_problem(filename: str, abi: str, arch: str) -> str | None:
    """Why ``filename`` cannot install on CPython ``abi`` (``cp311``) on ``arch`` (None: it can)."""
    parts = filename.removesuffix(".whl").split("-")
    target = _cpython_version(abi)
    if len(parts) < 5 or target is None:
        return f"{filename}: not a wheel name" if target else f"unknown Python ABI {abi!r}"
    pythons, abis, platforms = (tag.split(".") for tag in parts[-3:])
    if not any(_python_fits(p, a, target) for p in pythons for a in abis):
        return f"{filename}: built for {parts[-3]}-{parts[-2]}, not {abi}"
    machine = normalise_arch(arch)
    if not any(p == "any" or p.endswith(f"_{machine}") for p in platforms):
        return f"{filename}: built for {parts[-1]}, not {machine}"
    return None


def deb_problem(filename: str, arch: str) -> str | None:
    """Why the Debian package ``filename`` cannot install on ``arch`` (None: it can)."""
    deb_arch = filename.removesuffix(".deb").rsplit("_", 1)[-1]
    wanted = DEB_ARCH.get(normalise_arch(arch), normalise_arch(arch))
    return None if deb_arch in (wanted, "all") else f"{filename}: built for {deb_arch}, not {wanted}"


def package_problem(filename: str, abi: str, arch: str) -> str | None:
    if filename.endswith(".whl"):
        return wheel_problem(filename, abi, arch)
    if filename.endswith(".deb"):
        return deb_problem(filename, arch)
    return None
