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
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import statistics
import sys
import time

from agent.network.mesh import Publication, RoutingMesh
from bench.common import ms, percentile
from skiff.models.appspec import PortMapping
from tests.integration.mesh.lab import BACKEND_PORT, NODE_IP, MeshLab

CHUNK = 1 << 20
PUBLISHED = 8080


def bulk(host: str, port: int, total: int) -> float:
    """Send `total` bytes; the seconds from connect until the server confirmed them all."""
    payload = b"S" * CHUNK
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as conn:
        sent = 0
        while sent < total:
            n = min(CHUNK, total - sent)
            conn.sendall(payload[:n] if n < CHUNK else payload)
            sent += n
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(64):
            answer += chunk
    elapsed = time.perf_counter() - start
    if int(answer or b"0") != total:
        raise RuntimeError(f"server counted {answer!r} bytes, {total} were sent")
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


def measure(lab: MeshLab, mbytes: int, rounds: int, count: int) -> dict[str, dict[str, list]]:
    backend = lab.backends[0]
    paths = {"direct": (backend.ip, BACKEND_PORT), "mesh": (NODE_IP, PUBLISHED)}
    out: dict[str, dict[str, list]] = {p: {"bulk": [], "connect": []} for p in paths}
    # Warm-up on both paths: ARP, first conntrack entries, the server's threads.
    for host, port in paths.values():
        lab.in_client(connects, host, port, 20)
    per_round = max(1, count // rounds)
    for i in range(rounds):
        order = list(paths.items()) if i % 2 == 0 else list(paths.items())[::-1]
        for name, (host, port) in order:
            out[name]["bulk"].append(lab.in_client(bulk, host, port, mbytes << 20))
            out[name]["connect"] += lab.in_client(connects, host, port, per_round)
        print(f"  round {i + 1}/{rounds} done", flush=True)
    return out


def report(out: dict[str, dict[str, list]], mbytes: int) -> None:
    def rate(seconds: list[float]) -> float:
        return (mbytes << 20) / statistics.median(seconds)

    base = out["direct"]
    b_rate = rate(base["bulk"])
    b50, b95 = statistics.median(base["connect"]), percentile(base["connect"], 95)
    print(f"\nrouting mesh vs direct to the backend ({mbytes} MiB x {len(base['bulk'])} "
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
    args = parser.parse_args()
    # Ctrl-C or SIGTERM still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    lab = MeshLab(backends_wanted=1)
    try:
        lab.up()
        # The mesh also turns on forwarding in the node, which the direct path needs too.
        asyncio.run(publish(lab))
        out = measure(lab, args.mbytes, args.rounds, args.connects)
    finally:
        lab.close()  # the node namespace, and the mesh table in it, go away here
    left = lab.leftovers()
    if left:
        print(f"left behind: {left}", file=sys.stderr)
    report(out, args.mbytes)


if __name__ == "__main__":
    main()
