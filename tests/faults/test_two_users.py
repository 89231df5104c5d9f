"""Host-wide liveness with two uids: each user's campaign lock is visible to the other, and cleanup
never touches another user's container, nor (even for root with --all-users) a live campaign's.

Needs root (to create and become a second user); CI runs as root. The second user's process is
plain ``/usr/bin/python3`` holding the lock the way ``LiveCampaign`` does (lem's venv may not be
readable by that user): what is tested is that the lock can be *tested* across uids.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lem.campaign.liveness import LiveCampaign, ensure_runtime_dir, live_campaign_ids
from lem.runtime.orphans import OrphanPolicy
from lem.runtime.process import current_process, host_id
from tests.faults.conftest import gone, wait_for

pytestmark = pytest.mark.faults
OTHER = "lemfault"
HOLDER = """
import fcntl, json, os, sys, time
path, ready = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.fchmod(fd, 0o644)
open(ready + ".part", "w").write(str(os.getpid()))
os.replace(ready + ".part", ready)  # whole when it appears
sys.stdin.read()  # until the test closes stdin
"""
TESTER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOFOLLOW)
try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("locked")
"""


@pytest.fixture
def other_uid() -> int:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the two-uid test must run as root in CI")
        pytest.skip("needs root to create a second user")
    try:
        return pwd.getpwnam(OTHER).pw_uid
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", OTHER], check=True)
        return pwd.getpwnam(OTHER).pw_uid


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A runtime directory both users can reach (pytest's tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="lem-faults-", dir="/tmp"))
    top.chmod(0o755)
    yield top / "runtime"
    shutil.rmtree(top)


def test_two_users_see_each_others_campaigns_and_cleanup_spares_the_other_user(
    shared_dir: Path, other_uid: int
) -> None:
    shared = shared_dir
    ensure_runtime_dir(shared)  # mode 1777, as /tmp/lem-runtime
    assert oct(shared.stat().st_mode & 0o7777) == "0o1777"
    ready = shared / "ready"
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c", HOLDER, str(shared / "theirs-abcd1234.777.lock"), str(ready)],
        user=other_uid,
        stdin=subprocess.PIPE,
    )
    try:
        wait_for(ready.exists, "the other user's lock", holder)
        their_pid = int(ready.read_text())
        with LiveCampaign(shared, "mine-12345678") as mine:
            assert live_campaign_ids(shared) == {"theirs-abcd1234", "mine-12345678"}
            seen = subprocess.run(
                ["/usr/bin/python3", "-c", TESTER, str(mine.path)],
                user=other_uid,
                capture_output=True,
                text=True,
                check=False,
            )
            assert seen.stdout.strip() == "locked", seen.stderr  # the other user sees root's campaign live

        theirs = {
            "org.llenergymeasure.managed": "true",
            "org.llenergymeasure.campaign": "theirs-abcd1234",
            "org.llenergymeasure.uid": str(other_uid),
            "org.llenergymeasure.owner": f"{host_id()}:{their_pid}:1",
        }
        live = live_campaign_ids(shared)
        assert OrphanPolicy(uid=0, spare_campaigns=frozenset(live)).spare_reason(theirs) == (
            f"belongs to uid {other_uid} (root may pass --all-users)"
        )
        root_all = OrphanPolicy(uid=0, spare_campaigns=frozenset(live), all_users=True)
        assert root_all.spare_reason(theirs) == "campaign theirs-abcd1234 is running"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert gone(their_pid)
    assert live_campaign_ids(shared) == set()
    # their campaign ended and its lem process is gone: only root with --all-users removes it
    assert OrphanPolicy(uid=0).spare_reason(theirs) is not None
    assert OrphanPolicy(uid=0, all_users=True).spare_reason(theirs) is None
    assert OrphanPolicy(uid=other_uid).spare_reason(theirs) is None  # nor does its owner need root


def test_a_container_whose_lem_process_lives_is_never_an_orphan() -> None:
    me = current_process()
    labels = {
        "org.llenergymeasure.managed": "true",
        "org.llenergymeasure.campaign": "c-1",
        "org.llenergymeasure.uid": str(me.uid),
        "org.llenergymeasure.owner": me.label(),
    }
    assert OrphanPolicy(uid=me.uid).spare_reason(labels) == f"its lem process (pid {me.pid}) is alive"
    other_host = {**labels, "org.llenergymeasure.owner": f"elsewhere:{me.pid}:{me.start_ticks}"}
    assert OrphanPolicy(uid=me.uid).spare_reason(other_host) == "started from host elsewhere"
    dead = {**labels, "org.llenergymeasure.owner": f"{me.host}:{me.pid}:{me.start_ticks + 1}"}
    assert OrphanPolicy(uid=me.uid).spare_reason(dead) is None  # same pid, another start: pid reused
