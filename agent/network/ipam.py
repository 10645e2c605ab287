"""Host-local IPAM: addresses of one node range, reserved as files.

Like containernetworking's host-local plugin: an allocation is a file `<dir>/<ip>` holding
the owner's container id, created with O_EXCL, so two processes can never hand out the same
address and allocations survive an agent restart. A flock on `<dir>/.lock` additionally makes
"does this owner already have an address? if not, reserve one" atomic, so `allocate` is
idempotent per owner even across processes. `<dir>/.last` remembers the last address handed
out: the next search starts after it, so a just-released address (whose MAC may still sit in
neighbours' ARP caches) is reused as late as possible.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path

LOCK = ".lock"
LAST = ".last"


class IpamError(Exception):
    """Bad range or owner, or no address left."""


class RangeExhausted(IpamError):
    pass


# ---- pure parts -------------------------------------------------------------------------


def parse_subnet(subnet: IPv4Network | str) -> IPv4Network:
    try:
        net = IPv4Network(subnet, strict=True) if isinstance(subnet, str) else subnet
    except ValueError as exc:  # host bits set, not IPv4, garbage
        raise IpamError(f"invalid range {subnet!r}: {exc}") from exc
    # A gateway plus at least one container: /30 is the smallest useful range.
    if net.prefixlen > 30:
        raise IpamError(f"range {net} is too small: need at least a /30")
    return net


def gateway_of(subnet: IPv4Network, prefixlen: int | None = None) -> IPv4Interface:
    """The bridge's address: the range's first host address, with `prefixlen` (default the
    range's own)."""
    plen = subnet.prefixlen if prefixlen is None else prefixlen
    return IPv4Interface(f"{subnet.network_address + 1}/{plen}")


def check_prefixlen(subnet: IPv4Network, prefixlen: int | None) -> int:
    """The prefix length addresses get: the range's own, or a shorter one (an overlay
    node's slice hands out addresses with the whole network's prefix, so every address of
    the network is on-link)."""
    if prefixlen is None:
        return subnet.prefixlen
    if not 0 < prefixlen <= subnet.prefixlen:
        raise IpamError(f"prefix length /{prefixlen} does not contain range {subnet}")
    return prefixlen


def candidates(subnet: IPv4Network, last: IPv4Address | None) -> Iterator[IPv4Address]:
    """Container addresses in search order: after `last`, wrapping round, never the
    network, broadcast or gateway address."""
    first = int(subnet.network_address) + 2
    stop = int(subnet.broadcast_address)  # exclusive
    count = stop - first
    start = first
    if last is not None and first <= int(last) < stop:
        start = int(last) + 1
    for i in range(count):
        yield IPv4Address(first + (start - first + i) % count)


def pick(subnet: IPv4Network, taken: set[IPv4Address],
         last: IPv4Address | None) -> IPv4Address | None:
    """The next free address, or None when the range is full."""
    return next((ip for ip in candidates(subnet, last) if ip not in taken), None)


def owned_by(allocations: Mapping[IPv4Address, str], owner: str) -> IPv4Address | None:
    return min((ip for ip, who in allocations.items() if who == owner), default=None)


def check_owner(owner: str) -> str:
    # The owner is written on one line of a file: no whitespace inside, not empty.
    if not owner or owner != owner.strip() or any(ch.isspace() for ch in owner):
        raise IpamError(f"invalid owner id {owner!r}")
    return owner


# ---- the store --------------------------------------------------------------------------


class Ipam:
    """Allocations of `subnet` kept under `directory` (created on demand). Addresses and the
    gateway carry `prefixlen` (default: the range's own).

    Blocking file I/O: call from a worker thread in async code.
    """

    def __init__(self, directory: Path, subnet: IPv4Network | str,
                 prefixlen: int | None = None) -> None:
        self.dir = Path(directory)
        self.subnet = parse_subnet(subnet)
        self.prefixlen = check_prefixlen(self.subnet, prefixlen)
        self.gateway = gateway_of(self.subnet, self.prefixlen)

    def _interface(self, ip: IPv4Address) -> IPv4Interface:
        return IPv4Interface(f"{ip}/{self.prefixlen}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def allocations(self) -> dict[IPv4Address, str]:
        """Address → owner for this range (files of other ranges in the same dir are
        ignored). An empty owner means a reservation whose write was cut short."""
        out: dict[IPv4Address, str] = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for name in names:
            try:
                ip = ip_address(name)
            except ValueError:
                continue  # .lock, .last, temp files
            if not isinstance(ip, IPv4Address) or ip not in self.subnet:
                continue
            try:
                out[ip] = (self.dir / name).read_text().strip()
            except FileNotFoundError:
                continue  # released while we listed
        return out

    def lookup(self, owner: str) -> IPv4Interface | None:
        ip = owned_by(self.allocations(), owner)
        return None if ip is None else self._interface(ip)

    def _last(self) -> IPv4Address | None:
        try:
            return IPv4Address((self.dir / LAST).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _reserve(self, ip: IPv4Address, owner: str) -> bool:
        try:
            fd = os.open(self.dir / str(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, owner.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def allocate(self, owner: str) -> IPv4Interface:
        """The owner's address: the one it already has, else the next free one."""
        check_owner(owner)
        with self._locked():
            current = self.allocations()
            mine = owned_by(current, owner)
            if mine is not None:
                return self._interface(mine)
            last = self._last()
            taken = set(current)
            while True:
                ip = pick(self.subnet, taken, last)
                if ip is None:
                    raise RangeExhausted(f"no free address left in {self.subnet}")
                if self._reserve(ip, owner):
                    break
                taken.add(ip)  # reserved by someone not honouring the lock; try the next
            (self.dir / LAST).write_text(f"{ip}\n")
            return self._interface(ip)

    def release(self, owner: str) -> list[IPv4Address]:
        """Free every address of `owner`; an unknown owner is fine (returns [])."""
        check_owner(owner)
        with self._locked():
            freed = [ip for ip, who in self.allocations().items() if who == owner]
            for ip in freed:
                (self.dir / str(ip)).unlink(missing_ok=True)
            return freed

    def reset(self) -> None:
        """Forget every allocation of this range (node teardown)."""
        with self._locked():
            for ip in self.allocations():
                (self.dir / str(ip)).unlink(missing_ok=True)
            (self.dir / LAST).unlink(missing_ok=True)
