"""Writing a plan in few round trips: ops grouped into etcd transactions.

Each group is all-or-nothing; a failed compare (our cache was behind) raises and the
key is retried, while groups already written stay written: the next plan starts from
them, so nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.store.objects import CommitOp, ObjectStore

# etcd refuses transactions of more than 128 operations (--max-txn-ops); stay well below.
MAX_OPS_PER_TXN = 64


async def commit_in_batches(store: ObjectStore, ops: Sequence[CommitOp]) -> None:
    for start in range(0, len(ops), MAX_OPS_PER_TXN):
        await store.commit(ops[start:start + MAX_OPS_PER_TXN])
