"""A tiny upstream resolver for the forwarding tests: fixed A records, NXDOMAIN for the
rest, over UDP and TCP, listening inside a network namespace."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rrset

from agent.network.netns import run_in_netns


def _bind(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((address, port))
    tcp.bind((address, port))
    tcp.listen(16)
    udp.setblocking(False)
    tcp.setblocking(False)
    return udp, tcp


class FakeUpstream:
    def __init__(self, netns: Path, address: str, records: dict[str, list[str]],
                 port: int = 53) -> None:
        self.netns, self.address, self.port = netns, address, port
        self.records = {name.rstrip(".").lower(): ips for name, ips in records.items()}
        self.queries: list[tuple[str, str]] = []  # (transport, name)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, wire: bytes, transport: str) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query, recursion_available=True)
        name = query.question[0].name
        self.queries.append((transport, name.to_text(omit_final_dot=True).lower()))
        ips = self.records.get(name.to_text(omit_final_dot=True).lower())
        if ips is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.answer.append(dns.rrset.from_text_list(name, 300, "IN", "A", ips))
        return response.to_wire(max_size=65535 if transport == "tcp" else 512,
                                prefer_truncation=True)

    async def start(self) -> FakeUpstream:
        udp, tcp = await asyncio.to_thread(run_in_netns, self.netns, _bind, self.address,
                                           self.port)
        loop = asyncio.get_running_loop()
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: Any = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data, "udp"), addr)

        self._udp, _ = await loop.create_datagram_endpoint(Udp, sock=udp)
        self._tcp = await asyncio.start_server(self._on_tcp, sock=tcp)
        return self

    async def _on_tcp(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                out = self.answer(await reader.readexactly(size), "tcp")
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
