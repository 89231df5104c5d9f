"""Shared fixtures. Keep this file small: put fixtures of one area in its own conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama-shaped model + trained tokenizer, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
