"""Import boundaries, checked on the source (AST), so a violation fails before anything runs.

- the host (``lem``) never imports a GPU framework (torch, transformers, vllm, tensorrt_llm);
- the harness (``lem_harness``) never imports ``lem``;
- ``pynvml`` / ``zeus`` only in ``lem_harness/devices/nvml.py``; ``docker`` only in ``lem/runtime/docker.py``;
- ``click`` only in ``lem/cli/``;
- frameworks only in ``lem_harness/engines/<name>.py``, and there only inside functions
  (or under ``if TYPE_CHECKING:``), so importing an engine module needs no framework;
- ``lem.config`` depends on nothing else of ``lem``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = REPO / "orchestrator" / "lem"
HARNESS = REPO / "images" / "harness" / "lem_harness"
FRAMEWORKS = {"torch", "transformers", "vllm", "tensorrt_llm"}


def imports(path: Path, package_root: Path | None = None) -> Iterator[tuple[str, int, bool]]:
    """(module, line, at module level) for every import of ``path`` (relative imports resolved)."""
    if package_root is None:
        package_root = HOST.parent if HOST in path.parents else HARNESS.parent
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    guarded = {id(n) for node in tree.body if _is_type_checking(node) for n in ast.walk(node)}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [_absolute(path, node, package_root)]
        for name in names:
            yield (
                name,
                getattr(node, "lineno", 0),
                id(node) in top_level or (id(node) not in guarded and _module_level(tree, node)),
            )


def _absolute(path: Path, node: ast.ImportFrom, package_root: Path) -> str:
    if not node.level:
        return node.module or ""
    package = path.parent.relative_to(package_root).parts
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_level(tree: ast.Module, target: ast.AST) -> bool:
    """True when ``target`` is not inside a function (module level, or in a module-level if/try)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    return not any(
        isinstance(node, functions) and any(child is target for child in ast.walk(node))
        for node in ast.walk(tree)
    )


def root(module: str) -> str:
    return module.split(".", 1)[0]


def sources(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def violations(files: list[Path], forbidden: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    return [
        f"{rel(path)}:{line} imports {module}"
        for path in files
        if rel(path) not in allowed
        for module, line, _ in imports(path)
        if root(module) in forbidden
    ]


def test_the_packages_are_where_the_test_looks() -> None:
    assert (HOST / "__init__.py").is_file() and (HARNESS / "__init__.py").is_file()
    assert len(sources(HOST)) > 10 and len(sources(HARNESS)) > 3


def test_host_never_imports_a_gpu_framework() -> None:
    assert violations(sources(HOST), FRAMEWORKS) == []


def test_harness_never_imports_the_host() -> None:
    assert violations(sources(HARNESS), {"lem"}) == []


@pytest.mark.parametrize(
    ("module", "home"),
    [
        ("pynvml", "images/harness/lem_harness/devices/nvml.py"),
        ("zeus", "images/harness/lem_harness/devices/nvml.py"),
        ("docker", "orchestrator/lem/runtime/docker.py"),
    ],
)
def test_vendor_sdk_has_one_importer(module: str, home: str) -> None:
    assert violations(sources(HOST) + sources(HARNESS), {module}, frozenset({home})) == []


def test_only_the_cli_imports_click() -> None:
    outside = [p for p in sources(HOST) if HOST / "cli" not in p.parents]
    assert violations(outside, {"click"}) == []


def test_frameworks_only_in_engine_modules_and_only_lazily() -> None:
    engines = HARNESS / "engines"
    found: list[str] = []
    for path in sources(HARNESS):
        for module, line, module_level in imports(path):
            if root(module) not in FRAMEWORKS:
                continue
            if path.parent != engines or path.name in ("__init__.py", "base.py"):
                found.append(f"{rel(path)}:{line} imports {module} outside an engine module")
            elif module_level:
                found.append(
                    f"{rel(path)}:{line} imports {module} at module level (import it inside a function)"
                )
    assert found == []


def test_config_package_depends_on_nothing_else_of_lem() -> None:
    found = [
        f"{rel(path)}:{line} imports {module}"
        for path in sources(HOST / "config")
        for module, line, _ in imports(path)
        if root(module) == "lem" and not module.startswith("lem.config")
    ]
    assert found == []


def test_the_checker_sees_guarded_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "lem_harness" / "engines" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
        "try:\n    import transformers\nexcept ImportError:\n    pass\n"
        "def load():\n    import vllm\nfrom . import base\nfrom ..devices import nvml\n"
    )
    assert sorted((m, top) for m, _, top in imports(probe, tmp_path)) == [
        ("lem_harness.devices", True),
        ("lem_harness.engines", True),
        ("torch", False),
        ("transformers", True),
        ("typing", True),
        ("vllm", False),
    ]
