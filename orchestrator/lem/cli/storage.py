"""Disk full, read-only, permission denied: a message with the path and what to do, not a bug report.

Every file lem writes is replaced atomically (temp file, then rename) and the temp file is
removed when the write fails, so nothing on disk is left half-written: the command can be run
again with ``--resume`` once the cause is fixed.
"""

from __future__ import annotations

import errno

_ADVICE = {
    errno.ENOSPC: "the file system is full: free space there (or pick another --results-dir)",
    errno.EDQUOT: "the disk quota is exhausted: free space (or pick another --results-dir)",
    errno.EROFS: "the file system is read-only: pick a writable --results-dir",
    errno.EACCES: "permission denied: make the directory writable for this user (or another --results-dir)",
    errno.EPERM: "operation not permitted: check the directory's owner and mode (or another --results-dir)",
    errno.ELOOP: "a symbolic link sits where lem writes: remove it (lem never follows links there)",
}


def storage_error(error: OSError) -> str:
    """``cannot write PATH: REASON — ADVICE; nothing was left half-written, resume with --resume``."""
    where = error.filename or "a results file"
    reason = error.strerror or str(error)
    advice = _ADVICE.get(error.errno or 0, "fix the cause")
    return (
        f"cannot write {where}: {reason}. {advice[0].upper()}{advice[1:]}; nothing was left "
        "half-written, so run the same command with --resume afterwards"
    )
