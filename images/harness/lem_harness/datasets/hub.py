"""Hub datasets (built-in names such as ``ai_energy_score`` or ``alpaca``, or any ``org/name``)
from the Hugging Face cache or hub.

Read without the ``datasets`` library: ``huggingface_hub.snapshot_download`` fetches (or,
with ``HF_HUB_OFFLINE=1``, finds in the cache) the dataset's data files, which are read
directly (parquet through pyarrow, JSON lines, or a JSON array for ShareGPT);
``extract`` turns each row into a prompt. When neither the hub nor a cached copy
is reachable, the error names ``HF_HOME``, ``HF_HUB_OFFLINE`` and the offline alternatives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from lem_harness.datasets.errors import DatasetError
from lem_harness.datasets.extract import Row, extract_texts
from lem_harness.prompt_sources import DatasetConfig

DATA_PATTERNS = ["*.parquet", "*.jsonl"]


def download_patterns(cfg: DatasetConfig) -> list[str]:
    """The files fetched: the built-in's named files, the subset's folder, or every data file."""
    builtin = cfg.builtin
    if builtin is not None and builtin.files:
        return list(builtin.files)
    subset = cfg.resolved_subset
    return [f"{subset}/{p}" for p in DATA_PATTERNS] if subset is not None else list(DATA_PATTERNS)


def fetch_command(cfg: DatasetConfig) -> str:
    """The command that puts the dataset into the Hugging Face cache (run where the hub is reachable)."""
    includes = " ".join(f"--include '{p}'" for p in download_patterns(cfg))
    return f"huggingface-cli download {cfg.repo_id} --repo-type dataset {includes}"


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
        f"and mount that cache as HF_HOME ({fetch_command(cfg)} with the same HF_HOME), or use an offline "
        "prompt source: "
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
            allow_patterns=download_patterns(cfg),
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


def _read_parquet(path: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DatasetError(f"{path}: reading parquet needs pyarrow, which this image lacks") from e
    rows: list[Row] = pq.read_table(path).to_pylist()
    return rows


def _read_json(path: Path) -> list[Row]:
    """A JSON array of objects (``.json``) or one object per line (``.jsonl``)."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json" and text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    if not all(isinstance(row, dict) for row in rows):
        raise DatasetError(f"{path}: expected JSON objects, one per row")
    return list(rows)


def read_rows(path: Path) -> list[Row]:
    return _read_parquet(path) if path.suffix == ".parquet" else _read_json(path)


def read_texts(cfg: DatasetConfig, files: list[Path]) -> list[str]:
    texts: list[str] = []
    for path in files:
        texts.extend(extract_texts(cfg, read_rows(path), str(path)))
    return texts


def data_files(cfg: DatasetConfig, root: Path) -> list[Path]:
    """The files holding the configured split (and subset), or the built-in's named files."""
    builtin = cfg.builtin
    if builtin is not None and builtin.files:
        return sorted(p for name in builtin.files for p in root.glob(name) if p.is_file())
    subset = cfg.resolved_subset
    base = root / subset if subset is not None else root
    return split_files(base, cfg.resolved_split) if base.is_dir() else []


def load_hub_texts(cfg: DatasetConfig, env: Mapping[str, str]) -> list[str]:
    """Every non-empty prompt text of the dataset's split, in file order."""
    root = _snapshot(cfg, env)
    files = data_files(cfg, root)
    if not files:
        subset = cfg.resolved_subset
        where = f"subset '{subset}', " if subset is not None else ""
        raise DatasetError(
            f"dataset '{cfg.repo_id}' has no data files for {where}split '{cfg.resolved_split}' under {root}"
        )
    return read_texts(cfg, files)
