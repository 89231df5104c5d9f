"""The manifest: contents, atomic writes, loading, and the definition check that guards resume."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from lem.campaign.manifest import (
    MANIFEST_FILE,
    ConfigEntry,
    Manifest,
    ManifestError,
    RunEntry,
    definition_hash,
)
from lem.campaign.plan import PlannedRun
from lem_harness.fileio import atomic_write_text


def planned(n: int = 3) -> list[PlannedRun]:
    return [
        PlannedRun(
            run_id=f"cfg{i % 2}-c{1 + i // 2:02d}",
            cycle=1 + i // 2,
            position=i + 1,
            config_id=f"id{i % 2}",
            name=f"cfg{i % 2}",
            backend="pytorch",
            axis_values={},
            gap_before_s=0.0,
            gap_kind="none",
        )
        for i in range(n)
    ]


def create(
    tmp_path: Path, runs: list[PlannedRun] | None = None, writer: object = atomic_write_text
) -> Manifest:
    return Manifest.create(
        tmp_path / MANIFEST_FILE,
        campaign_id="demo-1234abcd",
        campaign_name="demo",
        config={"campaign_name": "demo"},
        configs={"id0": ConfigEntry(name="cfg0", backend="pytorch", axis_values={"pytorch.batch_size": 1})},
        plan=runs or planned(),
        now=1_700_000_000.0,
        writer=writer,  # type: ignore[arg-type]
    )


def test_a_new_manifest_lists_every_planned_run_as_pending(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.save(1_700_000_000.0)
    manifest.close()
    data = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert data["campaign_id"] == "demo-1234abcd"
    assert data["definition_hash"] == definition_hash("demo", planned())
    assert data["created_at"] == "2023-11-14T22:13:20.000+00:00"
    assert [
        (r["run_id"], r["cycle"], r["position"], r["config_id"], r["status"], r["attempts"])
        for r in data["runs"]
    ] == [
        ("cfg0-c01", 1, 1, "id0", "pending", 0),
        ("cfg1-c01", 1, 2, "id1", "pending", 0),
        ("cfg0-c02", 2, 3, "id0", "pending", 0),
    ]


def test_a_saved_manifest_loads_back_identical(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.update(
        "cfg1-c01", status="done", attempts=1, duration_s=12.5, start_temperature_c={"GPU-1": 41.0}
    )
    manifest.save(1_700_000_100.0)
    manifest.close()
    loaded = Manifest.load(tmp_path / MANIFEST_FILE)
    assert loaded.entries() == manifest.entries()
    assert loaded.render() == manifest.render()
    assert loaded.entry("cfg1-c01").start_temperature_c == {"GPU-1": 41.0}


def test_the_rendered_text_is_the_json_of_every_entry(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.update("cfg0-c01", status="running", attempts=1)
    data = json.loads(manifest.render())
    assert data["runs"] == [e.model_dump(mode="json", exclude_none=True) for e in manifest.entries()]
    assert data["journal_seq"] == 1
    assert data["configs"] == {
        "id0": {"name": "cfg0", "backend": "pytorch", "axis_values": {"pytorch.batch_size": 1}}
    }


def test_one_line_per_run(tmp_path: Path) -> None:
    text = create(tmp_path).render()
    run_lines = [line for line in text.splitlines() if '"run_id"' in line]
    assert len(run_lines) == 3


class RecordingWriter:
    """The snapshot writer, recording each snapshot and signalling it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.written = threading.Event()

    def __call__(self, path: Path, text: str) -> None:
        atomic_write_text(path, text)
        self.texts.append(text)
        self.written.set()


def test_the_first_save_writes_the_whole_file_at_once(tmp_path: Path) -> None:
    writer = RecordingWriter()
    manifest = create(tmp_path, writer=writer)
    manifest.save(1.0)
    assert len(writer.texts) == 1
    assert (tmp_path / MANIFEST_FILE).read_text() == writer.texts[0]
    assert (tmp_path / "manifest.json.journal").read_text() == ""
    manifest.close()


def test_later_saves_are_journaled_at_once_and_snapshotted_in_the_background(tmp_path: Path) -> None:
    writer = RecordingWriter()
    manifest = create(tmp_path, writer=writer)
    manifest.save(1.0)
    writer.written.clear()
    manifest.update("cfg0-c01", status="running", attempts=1)
    manifest.save(2.0)
    journal = (tmp_path / "manifest.json.journal").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in journal] == [1]
    assert json.loads(journal[0])["run"] == {
        "run_id": "cfg0-c01",
        "position": 1,
        "cycle": 1,
        "config_id": "id0",
        "name": "cfg0",
        "backend": "pytorch",
        "status": "running",
        "attempts": 1,
    }
    assert writer.written.wait(5.0)  # the snapshot thread caught up
    assert json.loads(writer.texts[-1])["runs"][0]["status"] == "running"
    manifest.close()
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["journal_seq"] == 1
    assert not (tmp_path / "manifest.json.journal").exists()


def test_a_process_that_dies_before_the_snapshot_loses_nothing(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.save(1.0)
    manifest.store.interval_s = 3_600.0  # the snapshot thread will not write again
    manifest.update("cfg0-c01", status="done", attempts=1)
    manifest.save(2.0)
    manifest.update("cfg1-c01", status="running", attempts=1)
    manifest.save(3.0)
    # no close(): the process died here
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["runs"][0]["status"] == "pending"
    loaded = Manifest.load(tmp_path / MANIFEST_FILE)
    assert [e.status for e in loaded.entries()] == ["done", "running", "pending"]
    manifest.close()


def test_journal_lines_already_in_the_snapshot_are_not_replayed(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.update("cfg0-c01", status="done", attempts=1)
    manifest.save(1.0)  # snapshot with journal_seq 1
    manifest.close()
    old = json.dumps(
        {
            "run_id": "cfg0-c01",
            "position": 1,
            "cycle": 1,
            "config_id": "id0",
            "name": "cfg0",
            "backend": "pytorch",
            "status": "running",
            "attempts": 1,
        }
    )
    new = (
        old.replace('"cfg0-c01"', '"cfg1-c01"')
        .replace('"position": 1', '"position": 2')
        .replace('"id0"', '"id1"')
        .replace('"cfg0"', '"cfg1"')
    )
    (tmp_path / "manifest.json.journal").write_text(f'{{"seq":1,"run":{old}}}\n{{"seq":2,"run":{new}}}\n')
    loaded = Manifest.load(tmp_path / MANIFEST_FILE)
    assert [e.status for e in loaded.entries()] == ["done", "running", "pending"]


def test_a_torn_last_journal_line_is_ignored_and_a_torn_middle_one_is_an_error(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.save(1.0)
    manifest.store.interval_s = 3_600.0
    manifest.update("cfg0-c01", status="done")
    manifest.save(2.0)
    journal = tmp_path / "manifest.json.journal"
    good = journal.read_text()
    journal.write_text(good + '{"seq":2,"run":{"run_id":"cfg1-c0')
    assert [e.status for e in Manifest.load(tmp_path / MANIFEST_FILE).entries()][:2] == ["done", "pending"]
    journal.write_text('{"seq":2,"run":{"run_id"\n' + good)
    with pytest.raises(ManifestError, match=r"manifest.json.journal cannot be replayed .*:1: unreadable"):
        Manifest.load(tmp_path / MANIFEST_FILE)
    manifest.close()


def test_a_failing_background_snapshot_surfaces_on_the_next_save(tmp_path: Path) -> None:
    calls: list[str] = []
    failed = threading.Event()

    def writer(path: Path, text: str) -> None:
        calls.append(text)
        if len(calls) > 1:
            failed.set()
            raise OSError(28, "No space left on device")
        atomic_write_text(path, text)

    manifest = create(tmp_path, writer=writer)
    manifest.save(1.0)
    manifest.update("cfg0-c01", status="running")
    manifest.save(2.0)
    assert failed.wait(5.0)
    manifest.store._thread.join(5.0)  # type: ignore[union-attr]
    manifest.update("cfg0-c01", status="done")
    with pytest.raises(OSError, match="No space left"):
        manifest.save(3.0)
    with pytest.raises(OSError, match="No space left"):
        manifest.close()  # the final snapshot fails too: the journal stays for the next resume
    assert (tmp_path / "manifest.json.journal").exists()


def test_a_write_that_fails_leaves_the_previous_manifest_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = create(tmp_path)
    manifest.save(1.0)
    manifest.close()
    before = (tmp_path / MANIFEST_FILE).read_text()
    resumed = Manifest.load(tmp_path / MANIFEST_FILE)
    resumed.update("cfg0-c01", status="done")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        resumed.save(2.0)
    monkeypatch.undo()
    assert (tmp_path / MANIFEST_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE]  # no temp file left behind


def test_updates_are_validated(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    with pytest.raises(ValidationError):
        manifest.update("cfg0-c01", status="finished")
    with pytest.raises(ValidationError):
        manifest.update("cfg0-c01", colour="red")
    assert manifest.entry("cfg0-c01").status == "pending"


def test_counts_by_status(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.update("cfg0-c01", status="done")
    manifest.update("cfg1-c01", status="interrupted")
    assert (manifest.count("done"), manifest.count("pending"), manifest.count("interrupted", "running")) == (
        1,
        1,
        1,
    )


def test_the_definition_hash_covers_runs_configurations_and_order() -> None:
    runs = planned()
    base = definition_hash("demo", runs)
    assert definition_hash("demo", planned()) == base
    assert definition_hash("other", runs) != base
    assert definition_hash("demo", list(reversed(runs))) != base
    assert definition_hash("demo", runs[:2]) != base
    changed = [*runs[:2], PlannedRun(**{**runs[2].__dict__, "config_id": "id9"})]
    assert definition_hash("demo", changed) != base
    # gaps are not part of the definition: a resumed campaign may change them
    gapped = [PlannedRun(**{**r.__dict__, "gap_before_s": 99.0}) for r in runs]
    assert definition_hash("demo", gapped) == base


def test_a_manifest_of_another_definition_is_refused(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    with pytest.raises(ManifestError, match="written for a different campaign definition") as info:
        manifest.check_definition("0" * 16)
    assert "campaign_name or results_dir" in str(info.value)
    manifest.check_definition(definition_hash("demo", planned()))


def test_an_unreadable_manifest_is_explained(tmp_path: Path) -> None:
    path = tmp_path / MANIFEST_FILE
    path.write_text('{"schema_version": "1.0.0", "runs": 3}')
    with pytest.raises(
        ManifestError, match=r"is not a valid campaign manifest \(campaign_id: Field required\)"
    ):
        Manifest.load(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="pass --fresh to archive this directory"):
        Manifest.load(path)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        Manifest.load(tmp_path / "nope.json")


def test_a_manifest_of_another_major_version_is_refused(tmp_path: Path) -> None:
    manifest = create(tmp_path)
    manifest.save(1.0)
    manifest.close()
    path = tmp_path / MANIFEST_FILE
    path.write_text(path.read_text().replace('"schema_version": "1.0.0"', '"schema_version": "2.0.0"'))
    with pytest.raises(ManifestError, match=r"manifest version 2\.0\.0; this lem writes 1\.0\.0"):
        Manifest.load(path)


def test_only_a_changed_run_is_serialised_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = create(tmp_path, planned(50))
    dumped: list[str] = []
    import lem.campaign.manifest as module

    real = module._dump

    def counting_dump(model: RunEntry) -> str:
        dumped.append(model.run_id)
        return real(model)

    monkeypatch.setattr(module, "_dump", counting_dump)
    manifest.update("cfg0-c01", status="running")
    manifest.save(1.0)
    manifest.close()
    manifest.render()
    assert dumped == ["cfg0-c01"]
