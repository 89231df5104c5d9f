"""Which of lem's containers a cleanup may remove (pure: labels in, a reason to spare out).

A container is removed only when every one of these holds:

- it carries ``org.llenergymeasure.managed=true`` (lem started it);
- it belongs to the caller's uid (label ``org.llenergymeasure.uid``) — or root gave
  ``--all-users``; a container without the label belongs to nobody known and is spared;
- its campaign is not live on this host (``spare_campaigns``: campaigns whose host-wide lock
  is held, by any user);
- the lem process that started it (label ``org.llenergymeasure.owner``: host id, pid, start
  time) is gone; a container started from another host is spared (its process cannot be
  checked from here).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from lem.runtime.process import ProcessId, host_id, is_alive
from lem.runtime.spec import LABEL_CAMPAIGN, LABEL_MANAGED, LABEL_OWNER, LABEL_UID


@dataclass(frozen=True)
class OrphanPolicy:
    uid: int
    spare_campaigns: frozenset[str] = frozenset()
    all_users: bool = False
    host: str = field(default_factory=host_id)
    alive: Callable[[ProcessId, str], bool] = is_alive

    @classmethod
    def for_caller(cls, uid: int, spare_campaigns: Collection[str], all_users: bool = False) -> OrphanPolicy:
        return cls(uid=uid, spare_campaigns=frozenset(spare_campaigns), all_users=all_users)

    def spare_reason(self, labels: Mapping[str, str]) -> str | None:
        """Why the container must stay; None when it is an orphan to remove."""
        if labels.get(LABEL_MANAGED) != "true":
            return "not started by lem"
        owner_uid = labels.get(LABEL_UID)
        if not self.all_users and owner_uid != str(self.uid):
            return f"belongs to uid {owner_uid or 'unknown'} (root may pass --all-users)"
        campaign = labels.get(LABEL_CAMPAIGN)
        if campaign in self.spare_campaigns:
            return f"campaign {campaign} is running"
        owner = ProcessId.parse(labels.get(LABEL_OWNER, ""))
        if owner is not None and owner.host != self.host:
            return f"started from host {owner.host}"
        if owner is not None and self.alive(owner, self.host):
            return f"its lem process (pid {owner.pid}) is alive"
        return None
