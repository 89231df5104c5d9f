"""The AI Energy Score prompts (``AIEnergyScore/text_generation``) from the Hugging Face cache or hub.

Read without the ``datasets`` library: ``huggingface_hub.snapshot_download`` fetches (or,
with ``HF_HUB_OFFLINE=1``, finds in the cache) the dataset's data files, which are read
directly (parquet through pyarrow, or JSON lines). When neither the hub nor a cached copy
is reachable, the error names ``HF_HOME``, ``HF_HUB_OFFLINE`` and the offline alternatives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from lem_harness.datasets.errors import DatasetError
from lem_harness.experiment import DatasetConfig

DATA_PATTERNS = ["*.parquet", "*.jsonl"]
_TRUE = {"1", "true", "yes", "on"}


def hub_cache_dir(env: Mapping[str, str]) -> Path:
    """Where huggingface_hub keeps repositories: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    home = Path(env["HF_HOME"]) if env.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def unreachable_message(cfg: DatasetConfig, env: Mapping[str, str], reason: str) -> str:
    offline = env.get("HF_HUB_OFFLINE", "") or "unset"
    return (
        f"cannot read the dataset '{cfg.repo_id}' (dataset.name: {cfg.name}): {reason}. "
        f"Looked in the Hugging Face cache {hub_cache_dir(env)} (HF_HOME={env.get('HF_HOME', 'unset')}, "
        f"HF_HUB_OFFLINE={offline}). Either make the hub reachable, or download the dataset once where it is "
        f"and mount that cache as HF_HOME, or use an offline prompt source: "
        "prompts: {type: file, path: prompts.jsonl} or prompts: {type: synthetic}"
    )


def _snapshot(cfg: DatasetConfig, env: Mapping[str, str]) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise DatasetError(
            unreachable_message(cfg, env, "huggingface_hub is not installed in this image")
        ) from e
    offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    try:
        path = snapshot_download(
            repo_id=cfg.repo_id,
            repo_type="dataset",
            allow_patterns=DATA_PATTERNS,
            cache_dir=hub_cache_dir(env),
            local_files_only=offline,
            token=env.get("HF_TOKEN") or None,
        )
    except Exception as e:  # the hub client raises many types (network, auth, cache miss)
        raise DatasetError(unreachable_message(cfg, env, f"{type(e).__name__}: {str(e).rstrip('.')}")) from e
    return Path(path)


def split_files(root: Path, split: str) -> list[Path]:
    """The data files of ``split``: named ``<split>-*``/``<split>.*`` or under a ``<split>/`` folder."""
    found = []
    for path in sorted(p for pattern in DATA_PATTERNS for p in root.rglob(pattern)):
        parts = path.relative_to(root).parts[:-1]
        if path.name.startswith((f"{split}-", f"{split}.")) or split in parts:
            found.append(path)
    return found


def _read_parquet(path: Path, column: str) -> list[object]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DatasetError(f"{path}: reading parquet needs pyarrow, which this image lacks") from e
    table = pq.read_table(path)
    if column not in table.column_names:
        raise DatasetError(
            f"{path}: no column '{column}' (columns: {', '.join(table.column_names)}); set dataset.column"
        )
    values: list[object] = table.column(column).to_pylist()
    return values


def _read_jsonl(path: Path, column: str) -> list[object]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [i for i, row in enumerate(rows, start=1) if column not in row]
    if missing:
        raise DatasetError(f"{path}:{missing[0]}: no '{column}' key; set dataset.column")
    return [row[column] for row in rows]


def read_texts(files: list[Path], column: str) -> list[str]:
    texts: list[str] = []
    for path in files:
        values = _read_parquet(path, column) if path.suffix == ".parquet" else _read_jsonl(path, column)
        texts.extend(v for v in values if isinstance(v, str) and v)
    return texts


def load_hub_texts(cfg: DatasetConfig, env: Mapping[str, str]) -> list[str]:
    """Every non-empty prompt text of the dataset's split, in file order."""
    root = _snapshot(cfg, env)
    files = split_files(root, cfg.resolved_split)
    if not files:
        raise DatasetError(
            f"dataset '{cfg.repo_id}' has no data files for split '{cfg.resolved_split}' under {root}"
        )
    return read_texts(files, cfg.resolved_column)
