"""Where an experiment's prompts come from: built-in and hub datasets, a local file, or
synthetic token ids (the ``dataset`` and ``prompts`` sections of schema 3.0.0)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from lem_harness.schema_base import HUB_ID, StrictModel

# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class BuiltinDataset:
    """A built-in dataset name: where its prompts live on the hub and how a row becomes a prompt.

    ``extract`` names how a row becomes one prompt text (``lem_harness.datasets.extract``):
    ``column`` reads ``column``; ``alpaca`` joins instruction and input; ``sharegpt`` takes the
    first human turn of ``conversations``; ``mmlu`` writes the question, its lettered choices
    and ``Answer:``. ``files``: the data files to read when the repository is not laid out in
    splits (ShareGPT is one JSON file).
    """

    repo_id: str
    split: str
    column: str | None = None
    subset: str | None = None
    extract: Literal["column", "alpaca", "sharegpt", "mmlu"] = "column"
    files: tuple[str, ...] = ()


_AI_ENERGY_SCORE = BuiltinDataset("AIEnergyScore/text_generation", "train", column="text")
# Built-in dataset names (schema 3.0.0 aliases).
BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "ai_energy_score": _AI_ENERGY_SCORE,
    "ai-energy-score": _AI_ENERGY_SCORE,
    "alpaca": BuiltinDataset("tatsu-lab/alpaca", "train", extract="alpaca"),
    "sharegpt": BuiltinDataset(
        "anon8231489123/ShareGPT_Vicuna_unfiltered",
        "train",
        extract="sharegpt",
        files=("ShareGPT_V3_unfiltered_cleaned_split.json",),
    ),
    "gsm8k": BuiltinDataset("openai/gsm8k", "train", column="question", subset="main"),
    "mmlu": BuiltinDataset("cais/mmlu", "test", subset="all", extract="mmlu"),
}
DEFAULT_DATASET = "ai_energy_score"
DEFAULT_PROMPT_COUNT = 100
# A hub dataset without a built-in or configured column: the first of these its rows hold.
AUTO_COLUMNS: tuple[str, ...] = ("text", "prompt", "question", "instruction", "input", "content")


def _check_dataset_name(name: str) -> str:
    if name not in BUILTIN_DATASETS and not re.fullmatch(HUB_ID, name):
        names = ", ".join(sorted(BUILTIN_DATASETS))
        raise ValueError(
            f"{name!r} is neither a built-in dataset ({names}) nor a hub id "
            "like 'org/dataset'; for a local file use prompts: {type: file, path: ...}"
        )
    return name


def _check_layout(name: str, selection: HubSelection) -> None:
    builtin = BUILTIN_DATASETS.get(name)
    if builtin is not None and builtin.files and (selection.split or selection.subset):
        raise ValueError(
            f"dataset {name!r} is one file ({', '.join(builtin.files)}) without splits or "
            "subsets: remove split / subset"
        )


class HubSelection(StrictModel):
    """What to read from a hub dataset and which rows to use (shared by ``dataset`` and
    ``prompts: {type: huggingface}``)."""

    split: str | None = Field(None, min_length=1, max_length=100)
    subset: str | None = Field(None, min_length=1, max_length=200)
    column: str | None = Field(None, min_length=1, max_length=200)
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)
    # None: a seeded sample kept in dataset order; false: the first rows; true: seeded shuffle.
    shuffle: bool | None = None
    seed: StrictInt | None = Field(None, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _seed_needs_a_draw(self) -> HubSelection:
        if self.shuffle is False and self.seed is not None:
            raise ValueError(
                "seed is given but shuffle is false (the first rows are used, nothing is drawn): "
                "remove seed or set shuffle: true"
            )
        return self


class DatasetConfig(HubSelection):
    """A Hugging Face hub dataset: a built-in name (``ai_energy_score``, ``alpaca``, ...) or a
    hub id ``org/name``.

    Read through the Hugging Face cache; ``split``, ``subset`` and ``column`` default to the
    built-in dataset's own. ``sample_size`` prompts are drawn (seeded).
    """

    name: str = Field(DEFAULT_DATASET, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _check_dataset_name(name)

    @model_validator(mode="after")
    def _builtin_layout(self) -> DatasetConfig:
        _check_layout(self.name, self)
        return self

    @property
    def builtin(self) -> BuiltinDataset | None:
        return BUILTIN_DATASETS.get(self.name)

    @property
    def repo_id(self) -> str:
        return self.builtin.repo_id if self.builtin is not None else self.name

    @property
    def resolved_split(self) -> str:
        default = self.builtin.split if self.builtin is not None else "train"
        return self.split or default

    @property
    def resolved_subset(self) -> str | None:
        return self.subset or (self.builtin.subset if self.builtin is not None else None)

    @property
    def resolved_column(self) -> str | None:
        """The column read; None: the built-in's extraction, or the first of ``AUTO_COLUMNS``."""
        if self.column is not None:
            return self.column
        return self.builtin.column if self.builtin is not None else None


class HubPrompts(HubSelection):
    """``prompts: {type: huggingface, dataset: ...}``: the schema 3.0.0 spelling of ``dataset``."""

    type: Literal["huggingface"]
    dataset: str = Field(min_length=1, max_length=200)

    @field_validator("dataset")
    @classmethod
    def _known(cls, name: str) -> str:
        return _check_dataset_name(name)

    @model_validator(mode="after")
    def _builtin_layout(self) -> HubPrompts:
        _check_layout(self.dataset, self)
        return self

    def as_dataset(self) -> DatasetConfig:
        return DatasetConfig(name=self.dataset, **self.model_dump(exclude={"type", "dataset"}))


class FilePrompts(StrictModel):
    """A local JSON-lines file, one prompt per line under ``field``."""

    type: Literal["file"]
    path: str = Field(min_length=1, max_length=4_096)
    field: str = Field("prompt", min_length=1, max_length=200)
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)


class SyntheticPrompts(StrictModel):
    """Seeded synthetic prompts with exact token lengths."""

    type: Literal["synthetic"]
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)
    input_len_distribution: Literal["fixed", "uniform", "normal"] = "fixed"
    input_len: StrictInt = Field(512, ge=1, le=131_072)
    input_len_min: StrictInt = Field(16, ge=1, le=131_072)
    input_len_max: StrictInt = Field(1024, ge=1, le=131_072)
    input_len_std: StrictFloat = Field(64.0, ge=0, le=65_536)

    @model_validator(mode="after")
    def _range(self) -> SyntheticPrompts:
        if self.input_len_min > self.input_len_max:
            raise ValueError("prompts.input_len_min must be <= prompts.input_len_max")
        return self


PromptsConfig = Annotated[FilePrompts | SyntheticPrompts | HubPrompts, Field(discriminator="type")]
PromptSource = DatasetConfig | FilePrompts | SyntheticPrompts
