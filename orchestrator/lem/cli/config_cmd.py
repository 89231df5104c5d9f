"""``lem config validate FILE...``: check experiment and campaign files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import click

from lem.campaign.check import FileReport, check_file
from lem.cli.context import debug_enabled
from lem.config.errors import ConfigProblem
from lem.config.migrate import TARGETS, Migration, migrate_file
from lem_harness.fileio import atomic_write_text

YAML_SUFFIXES = (".yaml", ".yml")
MAX_SHOWN = 50  # problems and warnings printed per file; --json keeps them all


@click.group("config")
def config() -> None:
    """Check configuration files and migrate older ones."""


@config.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too (not only on errors).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], strict: bool, as_json: bool) -> None:
    """Validate experiment and campaign FILES (directories: every *.yaml inside).

    Exit status: 0 every file valid (warnings are printed), 1 some file invalid,
    2 usage error.
    """
    files = _yaml_files(paths)
    reports = [_safe_check(ctx, f) for f in files]
    if as_json:
        click.echo(json.dumps([r.to_json(strict) for r in reports], indent=2, default=str))
    else:
        click.echo(_format_reports(reports, strict))
    ctx.exit(0 if all(r.passes(strict) for r in reports) else 1)


def _yaml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            if not found:
                raise click.UsageError(f"no .yaml files under {path}")
            files.extend(found)
        else:
            files.append(path)
    return files


def _safe_check(ctx: click.Context, path: Path) -> FileReport:
    try:
        return check_file(path)
    except Exception as exc:
        if debug_enabled(ctx):
            raise
        message = f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        return FileReport(str(path), None, problems=(ConfigProblem(str(path), None, "", message),))


def _format_reports(reports: list[FileReport], strict: bool) -> str:
    lines: list[str] = []
    for report in reports:
        verdict = "valid" if report.passes(strict) else "invalid"
        summary = f" ({report.summary})" if report.summary else ""
        lines.append(f"{verdict:<8} {report.file}{summary}")
        lines.extend(_capped([*map(str, report.problems), *map(str, report.warnings)]))
    if len(reports) > 1:
        good = sum(r.passes(strict) for r in reports)
        lines.append(f"{len(reports)} files: {good} valid, {len(reports) - good} invalid")
    return "\n".join(lines)


@config.command("migrate")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--write", is_flag=True, help="Rewrite the files in place (atomically); default: print a diff.")
@click.option(
    "--to",
    "target",
    type=click.Choice(TARGETS),
    default=TARGETS[-1],
    show_default=True,
    help="Schema version to migrate to.",
)
def migrate(paths: tuple[Path, ...], write: bool, target: str) -> None:
    """Rewrite configs written with older spellings for schema 3.0.0.

    Renames older keys (``convergence_detection`` -> ``warmup.mode``, ``cache_ttl_sec`` ->
    ``cache_ttl_seconds``, ``model`` -> ``model_name``, ...), rewrites older layouts
    (``gpu_list``, ``batching_options``) and sets ``schema_version``, keeping comments and key
    order. Without --write it prints a unified diff and changes nothing.

    Exit status: 0 every file migrated (or already current), 1 some file has keys that cannot
    be mapped or is invalid after migration (nothing of it is written), 2 usage error.
    """
    failed = False
    for path in paths:
        migration = migrate_file(path)
        failed |= not _report_migration(migration, write)
    if failed:
        raise SystemExit(1)


def _report_migration(migration: Migration, write: bool) -> bool:
    if not migration.ok:
        click.echo(f"{migration.file}: not migrated ({len(migration.problems)} problem(s)):", err=True)
        for problem in migration.problems:
            click.echo(f"  {problem}", err=True)
        return False
    if not migration.changed:
        click.echo(f"{migration.file}: already schema 3.0.0; nothing to change", err=True)
        return True
    if write:
        atomic_write_text(Path(migration.file), migration.after)
        click.echo(f"{migration.file}: migrated ({len(migration.changes)} key(s) rewritten)", err=True)
    else:
        click.echo(migration.diff(), nl=False)
    return True


def _capped(items: list[str]) -> list[str]:
    """The first ``MAX_SHOWN`` lines, then how many more there are."""
    lines = [f"  {item}" for item in items[:MAX_SHOWN]]
    if len(items) > MAX_SHOWN:
        lines.append(f"  … and {len(items) - MAX_SHOWN:,} more (--json lists them all)")
    return lines
