"""The dataset layer's one exception: an unreadable or missing prompt source."""

from __future__ import annotations


class DatasetError(Exception):
    """Prompts could not be read; the message says where and what to do."""
