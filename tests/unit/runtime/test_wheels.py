"""Wheel and .deb file names against an image's Python ABI and CPU architecture."""

from __future__ import annotations

import pytest

from lem.runtime.wheels import deb_problem, normalise_arch, package_problem, wheel_problem


@pytest.mark.parametrize(
    "name",
    [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "transformers-5.24.0-py3-none-any.whl",
        "six-1.16.0-py2.py3-none-any.whl",
        "cryptography-50.0.2-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "tokenizers-0.23.3-cp39-abi3-manylinux_2_17_x86_64.whl",
        "regex-2026.11.19-cp311-cp311-linux_x86_64.whl",
        "pkg-1.0-1-py3-none-any.whl",  # with a build tag
    ],
)
def test_wheels_that_fit_cpython_311_on_x86_64(name: str) -> None:
    assert wheel_problem(name, "cp311", "amd64") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (
            "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",
            "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl: built for cp312-cp312, not cp311",
        ),
        (
            "newabi-1.0-cp312-abi3-manylinux_2_17_x86_64.whl",  # abi3 from 3.12 on: not for 3.11
            "newabi-1.0-cp312-abi3-manylinux_2_17_x86_64.whl: built for cp312-abi3, not cp311",
        ),
        (
            "numpy-2.3.5-cp311-cp311-manylinux_2_28_aarch64.whl",
            "numpy-2.3.5-cp311-cp311-manylinux_2_28_aarch64.whl: "
            "built for manylinux_2_28_aarch64, not x86_64",
        ),
        (
            "x-1.0-cp311-cp311-win_amd64.whl",
            "x-1.0-cp311-cp311-win_amd64.whl: built for win_amd64, not x86_64",
        ),
        ("garbage.whl", "garbage.whl: not a wheel name"),
    ],
)
def test_wheels_that_do_not_fit_say_why(name: str, problem: str) -> None:
    assert wheel_problem(name, "cp311", "x86_64") == problem


def test_an_unknown_target_abi_is_reported() -> None:
    assert wheel_problem("a-1-py3-none-any.whl", "pypy39", "x86_64") == "unknown Python ABI 'pypy39'"


def test_debian_packages_by_architecture() -> None:
    assert deb_problem("libnuma1_2.0.16-1_amd64.deb", "x86_64") is None
    assert deb_problem("tzdata_2024a-0+deb12u1_all.deb", "aarch64") is None
    assert deb_problem("libnuma1_2.0.16-1_amd64.deb", "arm64") == (
        "libnuma1_2.0.16-1_amd64.deb: built for amd64, not arm64"
    )


def test_other_files_are_not_packages_and_arch_names_are_normalised() -> None:
    assert package_problem("SHA256SUMS", "cp311", "x86_64") is None
    assert [normalise_arch(a) for a in ("amd64", "x86_64", "ARM64", "aarch64")] == [
        "x86_64",
        "x86_64",
        "aarch64",
        "aarch64",
    ]
