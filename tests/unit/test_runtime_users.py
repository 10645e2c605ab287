"""user: resolution against the image's passwd and group text, never the host's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.runtime.request import RequestError
from agent.runtime.users import ResolvedUser, lookup_user, resolve_in_rootfs, resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
broken:x:notanumber:1::/:/bin/sh
"""
GROUP = """\
root:x:0:
daemon:x:1:
app:x:1000:
staff:x:50:app,daemon
audio:x:29:app
"""


@pytest.mark.parametrize(("user", "expected"), [
    (None, ResolvedUser(0, 0, (), "/root")),
    ("", ResolvedUser(0, 0, (), "/root")),
    ("root", ResolvedUser(0, 0, (), "/root")),
    ("app", ResolvedUser(1000, 1000, (50, 29), "/home/app")),
    ("1000", ResolvedUser(1000, 1000, (50, 29), "/home/app")),
    ("4242", ResolvedUser(4242, 0, (), "/")),  # unknown uid: allowed, gid 0, like Docker
    ("4242:4243", ResolvedUser(4242, 4243, (), "/")),
    ("app:staff", ResolvedUser(1000, 50, (), "/home/app")),  # explicit group: only that
    ("daemon:0", ResolvedUser(1, 0, (), "/usr/sbin")),
    ("1:audio", ResolvedUser(1, 29, (), "/usr/sbin")),
])
def test_resolution(user: str | None, expected: ResolvedUser) -> None:
    assert resolve_user(user, PASSWD, GROUP) == expected


@pytest.mark.parametrize(("user", "message"), [
    ("nobody", "user 'nobody' not found"),
    ("app:wheel", "group 'wheel' not found"),
    ("broken", "user 'broken' not found"),  # its malformed line was skipped
])
def test_unknown_names_are_clear_errors(user: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        resolve_user(user, PASSWD, GROUP)


def test_no_files_at_all() -> None:
    assert resolve_user("123", "", "") == ResolvedUser(123, 0, (), "/")
    with pytest.raises(RequestError):
        resolve_user("app", "", "")


def test_symlinks_stay_inside_the_rootfs(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "real").mkdir(parents=True)
    (rootfs / "real" / "passwd").write_text("web:x:33:33::/srv:/bin/sh\n")
    (rootfs / "etc").symlink_to("/real")  # absolute: means the rootfs's /real
    assert resolve_in_rootfs(rootfs, "/etc/passwd") == rootfs / "real" / "passwd"
    assert lookup_user(rootfs, "web") == ResolvedUser(33, 33, (), "/srv")
    # A link climbing out with ".." stops at the rootfs's own "/": nothing of the host's.
    os.symlink("../../../../../../../../../../usr/group", rootfs / "real" / "group")
    assert resolve_in_rootfs(rootfs, "/etc/group") == rootfs / "usr" / "group"
    with pytest.raises(RequestError, match="group 'root' not found"):
        lookup_user(rootfs, "web:root")


def test_symlink_loops_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(RequestError, match="too many symlinks"):
        resolve_in_rootfs(tmp_path, "/a/passwd")
