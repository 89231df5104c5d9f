"""Statistics across cycles, per configuration (and per group_by group), for one campaign.

Only runs with status ``ok`` and inference metrics enter the statistics. Failed runs,
invalid ones (a corrupt or unknown-version ``result.json``, an ``ok`` result without
metrics) and runs the manifest knows but that left no result are counted per
configuration and never averaged in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from pathlib import Path

from lem.config.zone import local_zone
from lem.results.fields import FieldValue, is_record_field, record_value, resolve_field, validate_fields
from lem.results.load import SCHEDULE_FILE, LoadProblem, NoResultsError, RunRecord, load_results
from lem.results.manifest import ManifestInfo, read_manifest
from lem.results.metrics import METRICS
from lem.results.stats import Stats, describe
from lem.results.validity import ValidityFlag, campaign_flags, high_cv_flags

GroupKey = tuple[tuple[str, FieldValue], ...]


@dataclass(frozen=True)
class Excluded:
    failed: int = 0
    invalid: int = 0
    missing: int = 0  # in the manifest, but no result file

    @property
    def total(self) -> int:
        return self.failed + self.invalid + self.missing

    def __add__(self, other: Excluded) -> Excluded:
        return Excluded(
            self.failed + other.failed, self.invalid + other.invalid, self.missing + other.missing
        )

    def describe(self) -> str:
        parts = [
            f"{n} {what}"
            for what, n in (("failed", self.failed), ("invalid", self.invalid), ("missing", self.missing))
            if n
        ]
        return ", ".join(parts) if parts else "none"


@dataclass(frozen=True)
class ConfigSummary:
    campaign: str
    config_id: str
    name: str
    backend: str
    group: GroupKey
    n_ok: int
    excluded: Excluded
    run_ids: tuple[str, ...]  # the runs in the statistics
    stats: dict[str, Stats]  # metric name -> statistics over the ok runs
    run_flags: dict[str, int]  # harness flag code -> number of ok runs carrying it
    flags: tuple[ValidityFlag, ...]  # configuration-level (HIGH_CV)

    def stat(self, metric: str) -> Stats:
        return self.stats.get(metric, Stats(n=0))


@dataclass(frozen=True)
class GroupSummary:
    key: GroupKey
    config_names: tuple[str, ...]
    n_ok: int
    excluded: Excluded
    stats: dict[str, Stats]  # pooled over the ok runs of every configuration in the group

    def stat(self, metric: str) -> Stats:
        return self.stats.get(metric, Stats(n=0))


@dataclass(frozen=True)
class CampaignSummary:
    campaign_dir: Path
    name: str
    campaign_id: str | None
    group_by: tuple[str, ...]
    configs: tuple[ConfigSummary, ...]
    groups: tuple[GroupSummary, ...]
    records: tuple[RunRecord, ...]
    problems: tuple[LoadProblem, ...]
    flags: tuple[ValidityFlag, ...]  # campaign-level
    manifest: ManifestInfo | None
    unattributed: Excluded = field(default_factory=Excluded)  # invalid files with no known config
    zone: tzinfo = timezone.utc  # local times (hour_of_day, plots against start time)

    @property
    def config_group_by(self) -> tuple[str, ...]:
        """The group_by fields that are configuration fields (a configuration's ``group``)."""
        return tuple(f for f in self.group_by if not is_record_field(f))

    @property
    def repetitions(self) -> tuple[int, ...]:
        """A daemon campaign's repetitions present in the results, in order (empty otherwise)."""
        return tuple(sorted({r.repetition for r in self.records if r.repetition is not None}))

    @property
    def excluded(self) -> Excluded:
        total = self.unattributed
        for config in self.configs:
            total = total + config.excluded
        return total

    @property
    def n_ok(self) -> int:
        return sum(c.n_ok for c in self.configs)

    def all_flags(self) -> tuple[ValidityFlag, ...]:
        """Campaign flags, then every configuration's, then run-level flag counts."""
        run_level = Counter[str]()
        for config in self.configs:
            run_level.update(config.run_flags)
        runs = tuple(
            ValidityFlag(code, "run", f"{n} valid run(s) flagged {code} by the harness")
            for code, n in sorted(run_level.items())
        )
        return (*self.flags, *(f for c in self.configs for f in c.flags), *runs)


def summarize_campaign(
    campaign_dir: Path, group_by: Sequence[str] | None = None, zone: tzinfo | None = None
) -> CampaignSummary:
    """Read every result under ``campaign_dir`` and summarise it (local times in ``zone``: the host's).

    Raises ``NoResultsError`` when the directory does not exist or holds no result and no
    manifest, and ``UnknownFieldError`` for a group_by path that is not a config field.
    """
    fields = validate_fields(group_by or ())
    loaded = load_results(campaign_dir)
    manifest = read_manifest(campaign_dir) if campaign_dir.is_dir() else None
    repetitions = repetition_manifests(campaign_dir) if manifest is None else ()
    if not loaded.records and not loaded.problems and manifest is None and not repetitions:
        raise NoResultsError(f"{campaign_dir}: no result.json files found")
    folder = campaign_dir.parent.parent if campaign_dir.is_file() else campaign_dir  # a result.json itself
    name = manifest.campaign_name if manifest and manifest.campaign_name else folder.name
    return summarize_records(
        loaded.records,
        loaded.problems,
        manifest=manifest,
        repetition_manifests=repetitions,
        group_by=fields,
        name=name,
        campaign_dir=campaign_dir,
        zone=zone if zone is not None else local_zone()[0],
    )


def repetition_manifests(campaign_dir: Path) -> tuple[tuple[int, ManifestInfo], ...]:
    """A daemon campaign's ``rep-NNNN/manifest.json`` files, by repetition (none elsewhere)."""
    if not (campaign_dir / SCHEDULE_FILE).is_file():
        return ()
    out = []
    for directory in sorted(campaign_dir.glob("rep-*")):
        number = directory.name.removeprefix("rep-")
        info = read_manifest(directory) if number.isdigit() else None
        if info is not None:
            out.append((int(number), info))
    return tuple(out)


def summarize_records(
    records: Sequence[RunRecord],
    problems: Sequence[LoadProblem] = (),
    *,
    manifest: ManifestInfo | None = None,
    repetition_manifests: Sequence[tuple[int, ManifestInfo]] = (),
    group_by: Sequence[str] = (),
    name: str = "",
    campaign_dir: Path = Path(),
    zone: tzinfo = timezone.utc,
) -> CampaignSummary:
    """The pure part of ``summarize_campaign``: records in, summary out."""
    fields = tuple(group_by)
    config_fields = tuple(f for f in fields if not is_record_field(f))
    buckets = _Buckets.build(records, problems, manifest)
    for repetition, info in repetition_manifests:
        buckets.add_repetition_missing(records, problems, repetition, info, name or campaign_dir.name)
    configs = tuple(
        sorted((buckets.summary(key, config_fields) for key in buckets.keys_in_order()), key=_config_order)
    )
    if config_fields != fields:
        groups = _record_groups(records, fields, zone)
    else:
        groups = _groups(configs, buckets, fields) if fields else ()
    return CampaignSummary(
        campaign_dir=campaign_dir,
        name=name or campaign_dir.name,
        campaign_id=manifest.campaign_id if manifest else _single_campaign_id(records),
        group_by=fields,
        configs=configs,
        groups=groups,
        records=tuple(records),
        problems=tuple(problems),
        flags=campaign_flags(records, manifest),
        manifest=manifest,
        unattributed=buckets.unattributed,
        zone=zone,
    )


def metric_stats(records: Iterable[RunRecord]) -> dict[str, Stats]:
    """Statistics of every metric over ``records`` (metrics with no value at all are left out)."""
    columns: list[list[float]] = [[] for _ in METRICS]
    for record in records:
        for i, value in enumerate(record.values):
            if value is not None:
                columns[i].append(value)
    return {m.name: describe(columns[i]) for i, m in enumerate(METRICS) if columns[i]}


# --------------------------------------------------------------------------- internals

ConfigKey = tuple[str, str]  # (campaign, config_id or "name:<config name>")


@dataclass
class _Identity:
    name: str = "?"
    backend: str = "?"


@dataclass
class _Buckets:
    ok: dict[ConfigKey, list[RunRecord]]
    failed: Counter[ConfigKey]
    invalid: Counter[ConfigKey]
    missing: Counter[ConfigKey]
    identity: dict[ConfigKey, _Identity]
    unattributed: Excluded

    @classmethod
    def build(
        cls, records: Sequence[RunRecord], problems: Sequence[LoadProblem], manifest: ManifestInfo | None
    ) -> _Buckets:
        b = cls(defaultdict(list), Counter(), Counter(), Counter(), defaultdict(_Identity), Excluded())
        names: dict[tuple[str, str], ConfigKey] = {}
        for r in records:
            key = (r.campaign, r.config_id)
            b.identity[key] = _Identity(r.config_name, r.backend)
            names[(r.campaign, r.config_name)] = key
            if r.status == "ok":
                b.ok[key].append(r)
            else:
                (b.failed if r.status == "failed" else b.invalid)[key] += 1
        b._add_problems(problems, names)
        if manifest is not None:
            b._add_missing(records, problems, manifest)
        return b

    def keys_in_order(self) -> list[ConfigKey]:
        return list(self.identity)

    def summary(self, key: ConfigKey, fields: tuple[str, ...]) -> ConfigSummary:
        runs = sorted(self.ok.get(key, []), key=lambda r: (r.cycle, r.run_id))
        ident = self.identity[key]
        stats = metric_stats(runs)
        flags = Counter[str](code for r in runs for code in set(r.flags))
        return ConfigSummary(
            campaign=key[0],
            config_id=key[1],
            name=ident.name,
            backend=ident.backend,
            group=self.group_key(key, fields),
            n_ok=len(runs),
            excluded=Excluded(self.failed[key], self.invalid[key], self.missing[key]),
            run_ids=tuple(r.run_id for r in runs),
            stats=stats,
            run_flags=dict(sorted(flags.items())),
            flags=high_cv_flags(ident.name, stats),
        )

    def group_key(self, key: ConfigKey, fields: tuple[str, ...]) -> GroupKey:
        config = next((r.config for r in self.ok.get(key, []) if r.config is not None), None)
        if config is None:
            return tuple((f, self.identity[key].backend if f == "backend" else None) for f in fields)
        return tuple((f, resolve_field(config, f)) for f in fields)

    def _add_problems(self, problems: Sequence[LoadProblem], names: dict[tuple[str, str], ConfigKey]) -> None:
        loose = 0
        for p in problems:
            key = self._problem_key(p, names)
            if key is None:
                loose += 1
            else:
                self.invalid[key] += 1
        self.unattributed = self.unattributed + Excluded(invalid=loose)

    def _problem_key(self, p: LoadProblem, names: dict[tuple[str, str], ConfigKey]) -> ConfigKey | None:
        if p.config_id is not None:
            key = (p.campaign, p.config_id)
            if key not in self.identity:
                self.identity[key] = _Identity(p.config_name or p.config_id)
            return key
        if p.config_name is not None:
            return names.get((p.campaign, p.config_name))
        return None

    def add_repetition_missing(
        self,
        records: Sequence[RunRecord],
        problems: Sequence[LoadProblem],
        repetition: int,
        manifest: ManifestInfo,
        campaign: str,
    ) -> None:
        """Runs one repetition's manifest knows that left no result, counted under the daemon campaign."""
        rep_dir = manifest.path.parent
        mine = [r for r in records if r.repetition == repetition]
        theirs = [p for p in problems if p.path.parent.parent == rep_dir]
        self._add_missing(mine, theirs, manifest, campaign)

    def _add_missing(
        self,
        records: Sequence[RunRecord],
        problems: Sequence[LoadProblem],
        manifest: ManifestInfo,
        campaign: str | None = None,
    ) -> None:
        campaign = campaign or manifest.path.parent.name
        seen = {r.run_id for r in records} | {p.run_id for p in problems if p.run_id}
        for run in manifest.runs:
            if run.run_id in seen or run.config_id is None:
                continue
            key = (campaign, run.config_id)
            if key not in self.identity:
                self.identity[key] = _Identity(run.config_name or run.config_id, run.backend or "?")
            self.missing[key] += 1


def _groups(
    configs: Sequence[ConfigSummary], buckets: _Buckets, fields: tuple[str, ...]
) -> tuple[GroupSummary, ...]:
    members: dict[GroupKey, list[ConfigSummary]] = defaultdict(list)
    for config in configs:
        members[config.group].append(config)
    out = []
    for key, group in members.items():
        runs = [r for c in group for r in buckets.ok.get((c.campaign, c.config_id), [])]
        excluded = Excluded()
        for c in group:
            excluded = excluded + c.excluded
        out.append(
            GroupSummary(
                key=key,
                config_names=tuple(c.name for c in group),
                n_ok=len(runs),
                excluded=excluded,
                stats=metric_stats(runs),
            )
        )
    return tuple(sorted(out, key=lambda g: _value_order(g.key)))


def _record_groups(
    records: Sequence[RunRecord], fields: tuple[str, ...], zone: tzinfo
) -> tuple[GroupSummary, ...]:
    """Groups keyed per run (``repetition``, ``hour_of_day``): a configuration's runs may fall in several."""
    members: dict[GroupKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        members[tuple((f, record_value(record, f, zone)) for f in fields)].append(record)
    out = []
    for key, group in members.items():
        ok = [r for r in group if r.status == "ok"]
        out.append(
            GroupSummary(
                key=key,
                config_names=tuple(dict.fromkeys(r.config_name for r in group)),
                n_ok=len(ok),
                excluded=Excluded(
                    failed=sum(1 for r in group if r.status == "failed"),
                    invalid=sum(1 for r in group if r.status == "invalid"),
                ),
                stats=metric_stats(ok),
            )
        )
    return tuple(sorted(out, key=lambda g: _value_order(g.key)))


def _config_order(c: ConfigSummary) -> tuple[object, ...]:
    return (*_value_order(c.group), c.campaign, c.name, c.config_id)


def _value_order(key: GroupKey) -> tuple[tuple[int, float, str], ...]:
    """Sort numbers numerically, then text, then missing values."""
    out: list[tuple[int, float, str]] = []
    for _, value in key:
        if value is None:
            out.append((2, 0.0, ""))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((0, float(value), ""))
        else:
            out.append((1, 0.0, str(value)))
    return tuple(out)


def _single_campaign_id(records: Sequence[RunRecord]) -> str | None:
    ids = {r.campaign_id for r in records}
    return next(iter(ids)) if len(ids) == 1 else None


__all__ = [
    "CampaignSummary",
    "ConfigSummary",
    "Excluded",
    "GroupSummary",
    "metric_stats",
    "summarize_campaign",
    "summarize_records",
]
