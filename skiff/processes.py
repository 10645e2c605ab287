"""Whether a process still lives, for the commands and daemons that start others."""

from __future__ import annotations

import contextlib
import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A dead child of ours is reaped first, or its zombie would
    look alive forever; a process of another user counts as alive."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
