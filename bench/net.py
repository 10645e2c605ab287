"""The routing mesh's cost: a published port on the node versus the backend's own address,
measured in the same run, on network namespaces.

    .venv/bin/python -m bench.net [--mbytes 200] [--rounds 5] [--connects 5000]

The lab (tests/integration/mesh/lab.py): a client namespace, a node namespace (uplink
veth, bridge) and one backend namespace on the bridge running a small Python server. The
client reaches the backend two ways, both forwarded by the node:
  mesh    node address:8080, DNAT by the mesh table to backend:80, masqueraded
  direct  backend:80 through a plain route via the node (the baseline)
Throughput: bytes/s of one bulk TCP transfer (client sends, server counts and answers the
count at EOF), per round. Connect latency: a fresh TCP connection, a 1-byte request and
its 1-byte answer, until the close; median and p95 over all samples. Rounds alternate
between the two paths so drift on a shared machine hits both alike.

    .venv/bin/python -m bench.net --lab [--mbytes 200] [--rounds 5] [--connects 5000]

measures the same two paths across nodes of a real 3-node `skiff lab` (bench/net_lab.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.network.mesh import Publication, RoutingMesh
from bench.common import ms, percentile
from skiff.models.appspec import PortMapping
from tests.integration.mesh.lab import BACKEND_PORT, NODE_IP, MeshLab

CHUNK = 1 << 20
PUBLISHED = 8080
Results = dict[str, dict[str, list[float]]]  # path -> "bulk" (seconds) | "connect" (seconds)


@dataclass(frozen=True)
class Target:
    """Where one path ends: `echo` answers b"y" to b"x", `sink` takes a bulk transfer."""

    host: str
    echo: int
    sink: int


def bulk(host: str, port: int, total: int, answer: bytes | None = None) -> float:
    """Send `total` bytes; the seconds from connect until the server confirmed them all
    (its answer at EOF starts with `answer`, by default the count)."""
    payload = b"S" * CHUNK
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as conn:
        sent = 0
        while sent < total:
            n = min(CHUNK, total - sent)
            conn.sendall(payload[:n] if n < CHUNK else payload)
            sent += n
        conn.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := conn.recv(64):
            got += chunk
    elapsed = time.perf_counter() - start
    if not (got.startswith(answer) if answer else int(got or b"0") == total):
        raise RuntimeError(f"server answered {got!r} for {total} bytes")
    return elapsed


def connects(host: str, port: int, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"x")
            if conn.recv(1) != b"y":
                raise RuntimeError("bad answer")
        samples.append(time.perf_counter() - start)
    return samples


def measure(run: Callable[..., Any], targets: dict[str, Target], mbytes: int, rounds: int,
            count: int, answer: bytes | None = None) -> Results:
    """Alternating rounds over the paths; `run(fn, *args)` calls fn where the client is."""
    out: Results = {p: {"bulk": [], "connect": []} for p in targets}
    # Warm-up on both paths: ARP, first conntrack entries, the server's threads.
    for t in targets.values():
        run(connects, t.host, t.echo, 20)
    per_round = max(1, count // rounds)
    for i in range(rounds):
        order = list(targets.items()) if i % 2 == 0 else list(targets.items())[::-1]
        for name, t in order:
            out[name]["bulk"].append(run(bulk, t.host, t.sink, mbytes << 20, answer))
            out[name]["connect"] += run(connects, t.host, t.echo, per_round)
        print(f"  round {i + 1}/{rounds} done", flush=True)
    return out


def report(out: Results, mbytes: int, title: str = "routing mesh vs direct to the backend"
           ) -> None:
    def rate(seconds: list[float]) -> float:
        return (mbytes << 20) / statistics.median(seconds)

    base = out["direct"]
    b_rate = rate(base["bulk"])
    b50, b95 = statistics.median(base["connect"]), percentile(base["connect"], 95)
    print(f"\n{title} ({mbytes} MiB x {len(base['bulk'])} "
          f"transfers, {len(base['connect'])} connects per path)")
    print(f"{'path':<8} {'throughput':>13} {'connect p50':>12} {'connect p95':>12}")
    for name, res in out.items():
        p50, p95 = statistics.median(res["connect"]), percentile(res["connect"], 95)
        print(f"{name:<8} {rate(res['bulk']) / 1e6:>8.0f} MB/s  {ms(p50)}  {ms(p95)}")
    m = out["mesh"]
    print(f"{'ratio':<8} {rate(m['bulk']) / b_rate:>12.2f}x "
          f"{statistics.median(m['connect']) / b50:>11.2f}x "
          f"{percentile(m['connect'], 95) / b95:>11.2f}x   (mesh / direct; throughput: higher "
          "is better)")


async def publish(lab: MeshLab) -> RoutingMesh:
    mesh = RoutingMesh(lab.table, lab.node)
    await mesh.update([Publication("bench/net", PortMapping(BACKEND_PORT, PUBLISHED),
                                   [lab.backends[0].ip])])
    return mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mbytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connects", type=int, default=5000)
    parser.add_argument("--lab", action="store_true",
                        help="across nodes of a real 3-node skiff lab (bench/net_lab.py)")
    args = parser.parse_args()
    # Ctrl-C or SIGTERM still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if args.lab:
        from bench.net_lab import TITLE, run_lab

        report(run_lab(args.mbytes, args.rounds, args.connects), args.mbytes, TITLE)
        return
    lab = MeshLab(backends_wanted=1)
    try:
        lab.up()
        # The mesh also turns on forwarding in the node, which the direct path needs too.
        asyncio.run(publish(lab))
        backend = lab.backends[0]
        targets = {"direct": Target(backend.ip, BACKEND_PORT, BACKEND_PORT),
                   "mesh": Target(NODE_IP, PUBLISHED, PUBLISHED)}
        out = measure(lab.in_client, targets, args.mbytes, args.rounds, args.connects)
    finally:
        lab.close()  # the node namespace, and the mesh table in it, go away here
    left = lab.leftovers()
    if left:
        print(f"left behind: {left}", file=sys.stderr)
    report(out, args.mbytes)


if __name__ == "__main__":
    main()
