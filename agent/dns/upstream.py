"""Asking the node's upstream resolvers, from the node's network namespace.

The server may listen in a namespace other than the agent's own (tests, or an agent that
runs outside its node's namespace), and the upstream servers must be reached from where
the listeners are: a socket belongs to the namespace it was created in. So the sockets
for upstream queries are created on a thread that entered that namespace
(agent.network.netns.run_in_netns) and then driven by the event loop, through a small
dnspython backend.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Collection, Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from agent.network.files import HOST_RESOLV, RESOLVED_UPSTREAM, read_resolv_files
from agent.network.netns import run_in_netns

log = logging.getLogger(__name__)


# An upstream that does not answer within this is skipped for the next one; a stub
# resolver gives up after 5 s (glibc), so two tries still fit.
DEFAULT_TIMEOUT = 2.0

# Answers that say "ask someone else": try the next upstream before giving up.
_RETRY_RCODES = frozenset({dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP})


def _nameservers(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            if "%" in fields[1]:
                continue  # scoped link-local ("fe80::1%eth0"): not worth the corner cases
            try:
                addr = ip_address(fields[1])
            except ValueError:
                continue
            if not addr.is_unspecified:
                out.append(str(addr))
    return out


def node_upstreams(host_text: str, resolved_text: str | None = None) -> list[str]:
    """The node's upstream resolvers from its resolv.conf text.

    Unlike a container's (agent/network/files.py), the node may use loopback servers:
    the DNS server runs in the node's namespace. But when all of them are loopback (the
    127.0.0.53 stub of systemd-resolved) and `resolved_text`
    (/run/systemd/resolve/resolv.conf) names real ones, those are used: an agent in a lab
    node's namespace has a loopback of its own, without the host's stub on it.
    """
    servers = _nameservers(host_text)
    if servers and all(ip_address(s).is_loopback for s in servers) and resolved_text:
        real = [s for s in _nameservers(resolved_text) if not ip_address(s).is_loopback]
        if real:
            return real
    return servers


def read_node_upstreams(host: Path = HOST_RESOLV,
                        resolved: Path = RESOLVED_UPSTREAM) -> list[str]:
    """node_upstreams() of this machine's files (blocking I/O: use a thread)."""
    return node_upstreams(*read_resolv_files(host, resolved))


class Upstream:
    """Forwards queries to a list of servers, in order, until one answers."""

    def __init__(self, servers: Sequence[str], netns: Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT, port: int = 53) -> None:
        self.servers = list(servers)
        self.timeout = timeout
        self.port = port
        self._backend = None if netns is None else _NetnsBackend(netns)

    async def query(self, message: dns.message.Message, tcp: bool,
                    avoid: Collection[str] = ()) -> dns.message.Message | None:
        """The first useful answer to `message` (sent under a fresh random id, since
        the client's is not ours to trust), or None if no server gave one. Servers in
        `avoid` are skipped (our own listening addresses: never forward to ourselves)."""
        message.id = secrets.randbits(16)
        last: dns.message.Message | None = None
        for server in self.servers:
            if server in avoid:
                continue
            try:
                if tcp:
                    answer = await dns.asyncquery.tcp(
                        message, server, timeout=self.timeout, port=self.port,
                        backend=self._backend)
                else:
                    answer = await dns.asyncquery.udp(
                        message, server, timeout=self.timeout, port=self.port,
                        ignore_unexpected=True, backend=self._backend)
            except Exception as exc:  # timeouts, refused, bad answers: try the next one
                log.debug("upstream %s: %s: %r", server, message.question, exc)
                continue
            if answer.rcode() in _RETRY_RCODES:
                last = answer
                continue
            return answer
        return last


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any] | BaseException] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(exc or EOFError("closed"))


class _Datagram(dns.asyncbackend.DatagramSocket):
    def __init__(self, family: int, transport: asyncio.DatagramTransport,
                 protocol: _DatagramProtocol) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.transport = transport
        self.protocol = protocol

    async def sendto(self, what: bytes, destination: Any, timeout: float | None) -> int:
        self.transport.sendto(what, destination)
        return len(what)

    async def recvfrom(self, size: int, timeout: float | None) -> tuple[bytes, Any]:
        try:
            got = await asyncio.wait_for(self.protocol.queue.get(), timeout)
        except TimeoutError:
            raise dns.exception.Timeout(timeout=timeout) from None
        if isinstance(got, BaseException):
            raise got
        return got

    async def close(self) -> None:
        self.transport.close()

    async def getpeername(self) -> Any:
        return self.transport.get_extra_info("peername")

    async def getsockname(self) -> Any:
        return self.transport.get_extra_info("sockname")


class _Stream(dns.asyncbackend.StreamSocket):
    def __init__(self, family: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        super().__init__(family, socket.SOCK_STREAM)
        self.reader = reader
        self.writer = writer

    async def sendall(self, what: bytes, timeout: float | None) -> None:
        self.writer.write(what)
        try:
            await asyncio.wait_for(self.writer.drain(), timeout)
        except TimeoutError:
            raise dns.exception.Timeout(timeout=timeout) from None

    async def recv(self, size: int, timeout: float | None) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.read(size), timeout)
        except TimeoutError:
            raise dns.exception.Timeout(timeout=timeout) from None

    async def close(self) -> None:
        self.writer.close()

    async def getpeername(self) -> Any:
        return self.writer.get_extra_info("peername")

    async def getsockname(self) -> Any:
        return self.writer.get_extra_info("sockname")


def _new_socket(family: int, kind: int, source: tuple[str, int] | None) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        if source is not None:
            sock.bind(source)
    except BaseException:
        sock.close()
        raise
    return sock


class _NetnsBackend(dns.asyncbackend.Backend):
    """dnspython's asyncio backend, with sockets made inside a network namespace."""

    def __init__(self, netns: Path) -> None:
        self.netns = netns

    def name(self) -> str:
        return "asyncio"

    async def make_socket(self, af: int, socktype: int, proto: int = 0,
                          source: Any = None, destination: Any = None,
                          timeout: float | None = None, ssl_context: Any = None,
                          server_hostname: str | None = None) -> Any:
        if ssl_context is not None:
            raise NotImplementedError("no TLS to upstream resolvers")
        sock = await asyncio.to_thread(run_in_netns, self.netns, _new_socket, af, socktype,
                                       source)
        loop = asyncio.get_running_loop()
        try:
            if socktype == socket.SOCK_DGRAM:
                transport, protocol = await loop.create_datagram_endpoint(
                    _DatagramProtocol, sock=sock)
                return _Datagram(af, transport, protocol)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, destination), timeout)
            except TimeoutError:
                raise dns.exception.Timeout(timeout=timeout) from None
            reader, writer = await asyncio.open_connection(sock=sock)
            return _Stream(af, reader, writer)
        except BaseException:
            sock.close()
            raise

    def datagram_connection_required(self) -> bool:
        return False

    async def sleep(self, interval: float) -> None:
        await asyncio.sleep(interval)

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError:
            raise dns.exception.Timeout(timeout=timeout) from None
