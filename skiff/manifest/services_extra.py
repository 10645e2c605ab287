"""Checks of single service keys: restart policy, stop signal, capability names."""

from __future__ import annotations

import re
import signal

from skiff.manifest.errors import quote
from skiff.models.appspec import RestartPolicy

_RESTART = re.compile(r"(no|always|unless-stopped|on-failure)(:[0-9]{1,9})?")
# Linux capabilities (capability(7)) as Docker names them, without the CAP_ prefix.
CAPABILITIES = frozenset("""
AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN
DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE
MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON
SETFCAP SETGID SETPCAP SETUID SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE
SYS_PACCT SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG SYSLOG WAKE_ALARM
""".split())  # noqa: SIM905 - a word list reads best as text


def restart_policy(value: str) -> tuple[RestartPolicy, int | None]:
    """The policy, and the max retries of "on-failure:N" (which the model does not keep
    yet: the caller warns that it is ignored)."""
    m = _RESTART.fullmatch(value.strip())
    if m is None or (m.group(2) and m.group(1) != "on-failure"):
        raise ValueError(f"{quote(value)} must be no, always, unless-stopped or "
                         "on-failure[:max-retries]")
    retries = int(m.group(2)[1:]) if m.group(2) else None
    return m.group(1), retries  # type: ignore[return-value]


def stop_signal(value: str | int) -> str:
    """"SIGTERM", "TERM" or a number → "SIGTERM"."""
    text = str(value).upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            raise ValueError(f"{quote(value)} is not a signal number") from None
    name = text if text.startswith("SIG") else "SIG" + text
    if name not in signal.Signals.__members__:
        raise ValueError(f"{quote(value)} is not a signal name")
    return name


def capability(value: str) -> str:
    name = value.upper().removeprefix("CAP_")
    if name != "ALL" and name not in CAPABILITIES:
        raise ValueError(f"{quote(value)} is not a Linux capability")
    return name
