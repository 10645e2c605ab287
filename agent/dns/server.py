"""The node's DNS server: UDP and TCP port 53 on each network's gateway address.

One server per node. Listening sockets are made inside the node's network namespace (on a
thread that entered it; None means the caller's own) and then served by the event loop;
nothing here blocks the loop. Answers come from a NameTable swapped whole by update(), so
a query is answered from one consistent picture of the cluster. The rules for a single
query live in agent.dns.wire; this module moves bytes and runs upstream forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from agent.dns.table import NameTable, RoundRobin
from agent.dns.upstream import DEFAULT_TIMEOUT, Upstream
from agent.dns.wire import Forward, relay, respond, servfail
from agent.network.netns import run_in_netns

log = logging.getLogger(__name__)

# Linux's IP_FREEBIND (the socket module of 3.11 lacks the name). It lets us bind a
# gateway address before the bridge has it, so the agent may add the listener and the
# address in either order; the socket starts receiving once the address exists.
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)

MAX_PENDING_FORWARDS = 256  # beyond this, queries for upstream names get SERVFAIL at once
MAX_TCP_CONNECTIONS = 128
TCP_IDLE_TIMEOUT = 10.0  # RFC 7766 suggests seconds, not minutes, for an idle connection


def _bind(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on address:port (runs inside the namespace)."""
    family = socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        for sock in (udp, tcp):
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.setblocking(False)
        # TCP only: a restarted agent must rebind despite TIME_WAIT connections. Not UDP,
        # where it would let a second server share the port silently.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind((address, port))
        tcp.bind((address, port))
        tcp.listen(128)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


@dataclass
class _Listener:
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server
    connections: set[asyncio.StreamWriter] = field(default_factory=set)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is not None:
            self.server._on_datagram(self.transport, data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (a client that went away): nothing to do.
        log.debug("dns udp: %s", exc)


class DnsServer:
    """The per-node DNS server.

    Lifecycle: construct, `update()` with a table, `add_address()` per network gateway
    (or `set_addresses()` with all of them), `close()` at the end. All methods run on the
    event loop; `update` and `set_upstreams` are synchronous and take effect for the
    next query.
    """

    def __init__(self, table: NameTable | None = None, *, netns: Path | None = None,
                 port: int = 53, upstreams: Sequence[str] = (),
                 upstream_port: int = 53, upstream_timeout: float = DEFAULT_TIMEOUT,
                 max_pending: int = MAX_PENDING_FORWARDS,
                 max_tcp: int = MAX_TCP_CONNECTIONS,
                 tcp_idle_timeout: float = TCP_IDLE_TIMEOUT) -> None:
        self.netns = netns
        self.port = port
        self._table = table or NameTable.empty()
        self._rotation = RoundRobin()
        self._upstream = Upstream(upstreams, netns, upstream_timeout, upstream_port)
        self._listeners: dict[str, _Listener] = {}
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._max_pending = max_pending
        self._max_tcp = max_tcp
        self._tcp_idle = tcp_idle_timeout

    # -- configuration -------------------------------------------------------------

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(self._listeners)

    @property
    def table(self) -> NameTable:
        return self._table

    @property
    def upstreams(self) -> list[str]:
        return list(self._upstream.servers)

    def update(self, table: NameTable) -> None:
        """Answer from `table` from now on (one assignment: atomic for every query)."""
        self._table = table
        self._rotation.retain(table.names())

    def set_upstreams(self, servers: Sequence[str]) -> None:
        self._upstream.servers = list(servers)

    async def add_address(self, address: str) -> None:
        """Listen on address:port, UDP and TCP. Idempotent. Raises OSError if the port
        is taken (another DNS server on the node) or the namespace is gone."""
        address = str(ip_address(address))
        async with self._lock:
            if address in self._listeners:
                return
            udp_sock, tcp_sock = await asyncio.to_thread(
                run_in_netns, self.netns, _bind, address, self.port)
            loop = asyncio.get_running_loop()
            transport: asyncio.DatagramTransport | None = None
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), sock=udp_sock)
                listener = _Listener(transport, None)  # type: ignore[arg-type]
                listener.tcp = await asyncio.start_server(
                    lambda r, w: self._on_tcp(listener, r, w), sock=tcp_sock)
            except BaseException:
                if transport is not None:
                    transport.close()
                udp_sock.close()
                tcp_sock.close()
                raise
            self._listeners[address] = listener
            log.info("dns: listening on %s port %d", address, self.port)

    async def remove_address(self, address: str) -> None:
        """Stop listening on address (and drop its TCP connections). Idempotent."""
        address = str(ip_address(address))
        async with self._lock:
            listener = self._listeners.pop(address, None)
            if listener is None:
                return
            listener.udp.close()
            listener.tcp.close()
            for writer in list(listener.connections):
                writer.close()
            await listener.tcp.wait_closed()
            log.info("dns: stopped listening on %s", address)

    async def set_addresses(self, addresses: Iterable[str]) -> dict[str, OSError]:
        """Listen on exactly these addresses. Never raises for one address: returns those
        it could not listen on (and logs them), which the next call tries again, so one
        bad address never stops the caller's round of network changes."""
        wanted = {str(ip_address(a)) for a in addresses}
        failed: dict[str, OSError] = {}
        for address in sorted(self.addresses - wanted):
            await self.remove_address(address)
        for address in sorted(wanted - self.addresses):
            try:
                await self.add_address(address)
            except OSError as exc:
                log.warning("dns: cannot listen on %s port %d: %s", address, self.port, exc)
                failed[address] = exc
        return failed

    async def close(self) -> None:
        for address in list(self._listeners):
            await self.remove_address(address)
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- queries ---------------------------------------------------------------------

    def _on_datagram(self, transport: asyncio.DatagramTransport, data: bytes,
                     addr: Any) -> None:
        try:
            result = respond(self._table, self._rotation, addr[0], data, tcp=False)
        except Exception:  # a bug in our rules must not take the listener down
            log.exception("dns: query from %s", addr[0])
            return
        if result is None:
            return
        if isinstance(result, bytes):
            transport.sendto(result, addr)
            return
        if len(self._pending) >= self._max_pending:
            transport.sendto(servfail(result), addr)
            return
        task = asyncio.create_task(self._forward_udp(transport, result, addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _forward_udp(self, transport: asyncio.DatagramTransport, fwd: Forward,
                           addr: Any) -> None:
        try:
            wire = await self._forward(fwd, tcp=False)
        except Exception:
            log.exception("dns: forwarding for %s", addr[0])
            return
        if not transport.is_closing():
            transport.sendto(wire, addr)

    async def _forward(self, fwd: Forward, tcp: bool) -> bytes:
        client_id = fwd.message.id
        answer = await self._upstream.query(fwd.message, tcp, avoid=self._listeners)
        return relay(fwd, client_id, answer)

    async def _on_tcp(self, listener: _Listener, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if len(listener.connections) >= self._max_tcp:
            writer.close()
            return
        listener.connections.add(writer)
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if peer else ""
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self._tcp_idle)
                (size,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(size), self._tcp_idle)
                result = respond(self._table, self._rotation, client_ip, data, tcp=True)
                if result is None:
                    break
                if isinstance(result, Forward):
                    result = await self._forward(result, tcp=True)
                writer.write(struct.pack("!H", len(result)) + result)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass  # the client went away or idled out
        except Exception:
            log.exception("dns: tcp connection from %s", client_ip)
        finally:
            listener.connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
