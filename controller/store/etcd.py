"""KVStore over etcd v3, through aetcd's channel and generated gRPC stubs.

The stubs are called directly rather than through aetcd's helpers because the helpers
hide what we need: a Range at a revision, the header revision of a Txn, and a watch we
can resume and cancel ourselves (aetcd multiplexes all watches on one shared stream,
which reports a broken connection to every watcher and is hard to restart cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import aetcd
import grpc
from aetcd import rpc
from aetcd.utils import prefix_range_end

from controller.store.errors import Compacted, LeaseNotFound, StoreError, Unavailable
from controller.store.kv import Compare, Delete, KeyValue, KVEvent, Op, Put, TxnResult

log = logging.getLogger(__name__)

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}
_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
# Reads ride out an etcd leader election (typically 1-2 election timeouts).
READ_RETRY_FIRST = 0.1
READ_RETRY_FOR = 5.0

_CHANNEL_OPTIONS = {
    # gRPC's default reconnect back-off grows to 120 s: after an etcd restart the
    # controller would sit idle for minutes. Our own callers back off already.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    # Notice a silently dead connection under an idle watch. etcd refuses pings more
    # often than every 5 s, so stay well above that.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    # A list of many objects easily exceeds gRPC's default 4 MiB message limit.
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
}


def _raise(exc: grpc.aio.AioRpcError, revision: int = 0, lease: int = 0) -> NoReturn:
    """Turn a gRPC error into our typed errors (by status code, then etcd's message)."""
    code, details = exc.code(), exc.details() or ""
    if code in _UNAVAILABLE:
        raise Unavailable(f"etcd: {code.name.lower()}: {details}") from exc
    if code == grpc.StatusCode.OUT_OF_RANGE and _COMPACTED in details:
        raise Compacted(revision) from exc
    if code == grpc.StatusCode.OUT_OF_RANGE and _FUTURE in details:
        raise ValueError(f"revision {revision} is in the future") from exc
    if code == grpc.StatusCode.NOT_FOUND and "lease not found" in details:
        raise LeaseNotFound(lease) from exc
    raise StoreError(f"etcd: {code.name.lower()}: {details}") from exc


def _prefix_range(prefix: str) -> tuple[bytes, bytes]:
    if not prefix:
        return b"\0", b"\0"  # etcd's spelling of "every key"
    key = prefix.encode()
    return key, prefix_range_end(key)


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), kv.mod_revision, kv.create_revision,
                    kv.lease)


def _request_op(op: Op) -> rpc.RequestOp:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(
            key=op.key.encode(), value=op.value, lease=op.lease))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=op.key.encode()))
    raise TypeError(f"not a KV op: {op!r}")


class EtcdKV:
    """One etcd client (one gRPC channel), opened on first use."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2379, *, timeout: float = 5.0,
                 watch_backoff: tuple[float, float] = (0.1, 5.0),
                 endpoints: Sequence[tuple[str, int]] = ()) -> None:
        """``endpoints``: several members of one etcd cluster (IP addresses); gRPC then
        dials the first that answers and moves on when it goes away."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self.watch_backoff = watch_backoff
        target_host, target_port = host, port
        if len(endpoints) > 1:
            # aetcd dials f"{host}:{port}"; gRPC's multi-address target "ipv4:a:1,b:2"
            # fits that shape when the last port is passed as the port.
            *first, (last_host, last_port) = endpoints
            target_host = "ipv4:" + "".join(f"{h}:{p}," for h, p in first) + last_host
            target_port = last_port
            self.host, self.port = endpoints[0]
        self._client = aetcd.Client(target_host, target_port, options=_CHANNEL_OPTIONS)
        self._closed = False

    def __repr__(self) -> str:
        return f"EtcdKV({self.host}:{self.port})"

    async def _connect(self) -> aetcd.Client:
        # aetcd's connect() only builds the channel and stubs; gRPC dials lazily.
        if self._closed:
            raise Unavailable(f"{self!r} is closed")
        try:
            await self._client.connect()
        except aetcd.exceptions.ClientError as exc:
            raise Unavailable(f"etcd at {self.host}:{self.port}: {exc}") from exc
        return self._client

    def _call_options(self, client: aetcd.Client, deadline: bool = True) -> dict[str, Any]:
        # wait_for_ready: during a short reconnect a call waits (up to its deadline) for
        # the channel instead of failing at once, so a blip in etcd is not an error.
        options: dict[str, Any] = {"metadata": client.metadata, "wait_for_ready": True}
        if deadline:
            options["timeout"] = self.timeout
        return options

    async def _read(self, request: Any) -> Any:
        """A Range, retried for a few seconds while etcd is between leaders ("leader
        changed", "no leader"): a read is safe to repeat, and a member dying is exactly
        when a caller most needs an answer. Other failures, and writes, are not retried
        here."""
        delay, deadline = READ_RETRY_FIRST, asyncio.get_running_loop().time() + READ_RETRY_FOR
        while True:
            client = await self._connect()
            try:
                return await client.kvstub.Range(request, **self._call_options(client))
            except grpc.aio.AioRpcError as exc:
                electing = exc.code() in _UNAVAILABLE and "leader" in (exc.details() or "")
                if not electing or asyncio.get_running_loop().time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def get(self, key: str) -> KeyValue | None:
        try:
            resp = await self._read(rpc.RangeRequest(key=key.encode()))
        except grpc.aio.AioRpcError as exc:
            _raise(exc)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def range(self, prefix: str, revision: int = 0) -> tuple[list[KeyValue], int]:
        """One Range request, so the result is one consistent snapshot (etcd returns
        keys in byte order, which is our "sorted by key")."""
        key, end = _prefix_range(prefix)
        try:
            resp = await self._read(rpc.RangeRequest(key=key, range_end=end,
                                                     revision=revision))
        except grpc.aio.AioRpcError as exc:
            _raise(exc, revision=revision)
        # A range at an old revision answers with the current header revision; the
        # caller asked for a snapshot at ``revision``, so that is what it was read at.
        return [_kv(kv) for kv in resp.kvs], revision or resp.header.revision

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        client = await self._connect()
        request = rpc.TxnRequest(
            compare=[rpc.Compare(key=c.key.encode(), result=rpc.Compare.EQUAL,
                                 target=rpc.Compare.MOD, mod_revision=c.mod_revision)
                     for c in compares],
            success=[_request_op(op) for op in ops])
        try:
            resp = await client.kvstub.Txn(request, **self._call_options(client))
        except grpc.aio.AioRpcError as exc:
            lease = next((op.lease for op in ops if isinstance(op, Put) and op.lease), 0)
            _raise(exc, lease=lease)
        return TxnResult(resp.succeeded, resp.header.revision)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[KVEvent]:
        """Events under ``prefix`` from ``start_revision`` (0: from now), forever.

        A broken stream is re-opened after the last revision delivered, with capped
        exponential back-off. etcd never splits one revision over two responses, and we
        only read the next response after yielding every event of the last one, so
        "last delivered + 1" loses nothing and repeats nothing.
        """
        initial, cap = self.watch_backoff
        delay = initial
        next_rev = start_revision
        loop = asyncio.get_running_loop()
        while True:
            client = await self._connect()  # outside the retry: closed means stop
            opened_at: float | None = None
            call = rpc.WatchStub(client.channel).Watch(**self._call_options(client, deadline=False))
            try:
                key, end = _prefix_range(prefix)
                create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                    key=key, range_end=end, start_revision=next_rev, prev_kv=True,
                    progress_notify=True))
                await asyncio.wait_for(call.write(create), self.timeout)
                while True:
                    # Only the creation is bounded: an idle watch may wait for hours.
                    wait = self.timeout if opened_at is None else None
                    resp = await asyncio.wait_for(call.read(), wait)
                    if resp is grpc.aio.EOF:
                        raise Unavailable("etcd closed the watch stream")
                    if resp.compact_revision:
                        raise Compacted(next_rev, resp.compact_revision)
                    if resp.canceled:
                        raise Unavailable(f"etcd cancelled the watch: {resp.cancel_reason}")
                    if resp.created:
                        opened_at = loop.time()
                        if not next_rev:
                            # "From now" must not move on if we have to resume later.
                            next_rev = resp.header.revision + 1
                        continue
                    if not resp.events:
                        # A progress notice: nothing under our prefix up to this
                        # revision, so a resume may start after it (and is less likely
                        # to land on compacted history).
                        next_rev = max(next_rev, resp.header.revision + 1)
                        continue
                    delay = initial
                    for ev in resp.events:
                        next_rev = ev.kv.mod_revision + 1
                        yield _event(ev)
            except (Unavailable, grpc.aio.AioRpcError, TimeoutError) as exc:
                call.cancel()
                if isinstance(exc, grpc.aio.AioRpcError) and exc.code() not in _UNAVAILABLE:
                    _raise(exc, revision=next_rev)
                if self._closed:
                    raise Unavailable(f"{self!r} is closed") from exc
                if opened_at is not None and loop.time() - opened_at > cap:
                    delay = initial  # it had been healthy for a while: start over
                log.warning("watch %s: %s; resuming at revision %d in %.1fs",
                            prefix, _describe(exc), next_rev, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, cap)
            finally:
                call.cancel()  # ends the server-side watch with the stream

    async def grant_lease(self, ttl: int) -> int:
        client = await self._connect()
        try:
            resp = await client.leasestub.LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl),
                                                     **self._call_options(client))
        except grpc.aio.AioRpcError as exc:
            _raise(exc)
        if resp.error:
            raise StoreError(f"etcd refused a lease: {resp.error}")
        return int(resp.ID)

    async def keepalive(self, lease_id: int) -> int:
        # One request on the keep-alive stream, then half-close so the call ends
        # cleanly instead of leaving a stream (and its gRPC task) behind.
        client = await self._connect()
        call = client.leasestub.LeaseKeepAlive(**self._call_options(client))
        try:
            await call.write(rpc.LeaseKeepAliveRequest(ID=lease_id))
            resp = await call.read()
            await call.done_writing()
            await call.read()  # EOF: etcd ends the call once we stop writing
        except grpc.aio.AioRpcError as exc:
            _raise(exc, lease=lease_id)
        finally:
            call.cancel()
        if resp is grpc.aio.EOF:
            raise Unavailable("etcd closed the lease keep-alive stream")
        return max(int(resp.TTL), 0)

    async def revoke_lease(self, lease_id: int) -> None:
        client = await self._connect()
        try:
            await client.leasestub.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease_id),
                                               **self._call_options(client))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return  # already expired or revoked: the outcome the caller wanted
            _raise(exc, lease=lease_id)

    async def compact(self, revision: int) -> None:
        """Drop history before ``revision``; compacting an old revision again is a no-op."""
        client = await self._connect()
        try:
            await client.kvstub.Compact(rpc.CompactionRequest(revision=revision, physical=True),
                                        **self._call_options(client))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.OUT_OF_RANGE and _COMPACTED in (exc.details() or ""):
                return
            _raise(exc, revision=revision)

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(aetcd.exceptions.ClientError, grpc.aio.AioRpcError):
            await self._client.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name.lower()}: {exc.details()}"
    return str(exc) or type(exc).__name__


def _event(ev: Any) -> KVEvent:
    if ev.type == rpc.Event.DELETE:
        # prev_kv is missing only if history just before the delete was compacted.
        prev = bytes(ev.prev_kv.value) if ev.HasField("prev_kv") else b""
        return KVEvent("DELETE", ev.kv.key.decode(), prev, ev.kv.mod_revision)
    return KVEvent("PUT", ev.kv.key.decode(), bytes(ev.kv.value), ev.kv.mod_revision,
                   ev.kv.create_revision)
