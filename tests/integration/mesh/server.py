"""A tiny backend for the routing-mesh tests and bench/net.py, run inside a namespace:

    nsenter --net=PATH python server.py NAME PORT

On TCP PORT, by the first bytes a client sends:
  "GET ..."  HTTP/1.0 answer, body "NAME PEER_ADDRESS\\n", then close
  "x"        one byte back ("y"), then close (connect latency)
  "S..."     read to EOF, answer the byte count (bulk throughput sink)
On UDP PORT: every datagram is answered with "NAME PEER_ADDRESS\\n".
Prints "ready" once both sockets listen. Standard library only: it runs as a script.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading

NAME = sys.argv[1] if len(sys.argv) > 1 else "backend"


class Tcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn: socket.socket = self.request
        peer = self.client_address[0]
        first = conn.recv(65536)
        if first.startswith(b"GET"):
            body = f"{NAME} {peer}\n".encode()
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
        elif first == b"x":
            conn.sendall(b"y")
        elif first.startswith(b"S"):
            total = len(first)
            while chunk := conn.recv(1 << 20):
                total += len(chunk)
            conn.sendall(str(total).encode())


class Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _data, sock = self.request
        sock.sendto(f"{NAME} {self.client_address[0]}\n".encode(), self.client_address)


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    tcp = TcpServer(("0.0.0.0", port), Tcp)
    udp = socketserver.UDPServer(("0.0.0.0", port), Udp)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    tcp.serve_forever()


if __name__ == "__main__":
    main()
