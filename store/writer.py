"""Apply mutations to the store: grouped by partition, executed concurrently, all or raise.

    writer = ViewWriter(session, keyspace="scv", concurrency=64)
    writer.apply(mutations)   # returns once every write is acknowledged at the session consistency

Mutations for one partition travel as one UNLOGGED batch: a single-partition batch is applied as one
mutation by the replica (atomic and isolated for that partition, no batchlog cost), which is how the
replicator "batches by partition key". Each statement keeps its own ``USING TIMESTAMP``, so the
order in which batches complete does not matter. If any write fails the whole call raises; the caller
retries the same mutations, which is safe because they are idempotent under their write timestamps:
- ``StoreUnavailable``: the store is out or slow (timeouts, unavailable replicas); retry;
- ``StoreRejected``: the store refuses the request and always will. Key limits (store/limits.py) are
  checked before anything is sent, so such a call writes nothing; an ``InvalidRequest`` from the
  store itself may follow some successful writes of the call. The caller isolates the culprit.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from scv.contracts.cells import encode_value
from store.binding import Binder
from store.exceptions import StoreRejected, StoreUnavailable
from store.index import bucket_of
from store.limits import refusal
from store.mutations import (
    DeleteIndex,
    DeleteKey,
    DeleteRedirect,
    DeleteRow,
    EndRow,
    EntityRef,
    IndexEntry,
    KeyRef,
    LinkChild,
    LinkKeyChild,
    Mutation,
    Park,
    PutIndex,
    PutKey,
    PutRedirect,
    PutRow,
    UnlinkChild,
    UnlinkKeyChild,
    Unpark,
)
from store.session import PERMANENT_ERRORS, TRANSIENT_ERRORS

__all__ = ["ViewWriter"]

# Budgets of one request. Cassandra rejects multi-partition batches over 50 KiB
# (batch_size_fail_threshold; "Batch too large") — a customer with a few long contact-center notes
# reaches that — so the byte budget stays well under. Bytes are the statements' serialized values (what
# travels), not characters: 10,000 characters of "€" are 30,000 bytes.
_MAX_STATEMENTS_PER_BATCH = 64
_MAX_BATCH_BYTES = 24 * 1024
# Per statement, besides its values: query id, flags, lengths.
_STATEMENT_OVERHEAD_BYTES = 64


def _serialized_bytes(bound: BoundStatement) -> int:
    return _STATEMENT_OVERHEAD_BYTES + sum(len(value) for value in bound.values if value is not None)


class ViewWriter:
    def __init__(
        self, session: Session, keyspace: str, concurrency: int = 64, batch_partitions: int = 64
    ) -> None:
        self._session = session
        self._concurrency = concurrency
        self._keyspace = keyspace
        self._metadata = session.cluster.metadata
        self._batch_partitions = batch_partitions
        ks = keyspace
        self._put_replace = session.prepare(
            f"INSERT INTO {ks}.customer_view (customer_id, kind, source, table_name, entity_id, "
            "attributes, source_ts_us, applied_at, home_id, ended_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._put_merge = session.prepare(
            f"UPDATE {ks}.customer_view USING TIMESTAMP ? SET attributes = attributes + ?, "
            "source_ts_us = ?, applied_at = ?, home_id = ?, ended_at = ? "
            "WHERE customer_id = ? AND kind = ? AND source = ? AND table_name = ? AND entity_id = ?"
        )
        self._end_row = session.prepare(
            f"UPDATE {ks}.customer_view USING TIMESTAMP ? SET ended_at = ? "
            "WHERE customer_id = ? AND kind = ? AND source = ? AND table_name = ? AND entity_id = ?"
        )
        self._delete_row = session.prepare(
            f"DELETE FROM {ks}.customer_view USING TIMESTAMP ? "
            "WHERE customer_id = ? AND kind = ? AND source = ? AND table_name = ? AND entity_id = ?"
        )
        self._put_index = session.prepare(
            f"INSERT INTO {ks}.entity_index (source, table_name, bucket, entity_id, kind, customer_id, "
            "parent_table, parent_id, owner_ts, home_id, parent_source, parent_key, lookup_keys) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._delete_index = session.prepare(
            f"DELETE FROM {ks}.entity_index USING TIMESTAMP ? "
            "WHERE source = ? AND table_name = ? AND bucket = ? AND entity_id = ?"
        )
        self._link = session.prepare(
            f"INSERT INTO {ks}.entity_children (source, parent_table, parent_id, child_table, child_id) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._unlink = session.prepare(
            f"DELETE FROM {ks}.entity_children USING TIMESTAMP ? WHERE source = ? AND parent_table = ? "
            "AND parent_id = ? AND child_table = ? AND child_id = ?"
        )

        self._put_key = session.prepare(
            f"INSERT INTO {ks}.key_owners (source, table_name, key_name, key_value, entity_id) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._delete_key = session.prepare(
            f"DELETE FROM {ks}.key_owners USING TIMESTAMP ? WHERE source = ? AND table_name = ? "
            "AND key_name = ? AND key_value = ? AND entity_id = ?"
        )
        self._link_key = session.prepare(
            f"INSERT INTO {ks}.key_children (source, table_name, key_name, key_value, child_source, "
            "child_table, child_id) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._unlink_key = session.prepare(
            f"DELETE FROM {ks}.key_children USING TIMESTAMP ? WHERE source = ? AND table_name = ? "
            "AND key_name = ? AND key_value = ? AND child_source = ? AND child_table = ? AND child_id = ?"
        )
        self._put_redirect = session.prepare(
            f"INSERT INTO {ks}.customer_redirects (customer_id, survivor_id) VALUES (?, ?) USING TIMESTAMP ?"
        )
        self._delete_redirect = session.prepare(
            f"DELETE FROM {ks}.customer_redirects USING TIMESTAMP ? WHERE customer_id = ?"
        )
        self._park = session.prepare(
            f"INSERT INTO {ks}.parked_entities (source, table_name, entity_id) VALUES (?, ?, ?) "
            "USING TIMESTAMP ?"
        )
        self._unpark = session.prepare(
            f"DELETE FROM {ks}.parked_entities USING TIMESTAMP ? WHERE source = ? AND table_name = ? "
            "AND entity_id = ?"
        )

        self._binders = {
            statement.query_id: Binder(statement)
            for statement in (
                self._put_replace,
                self._put_merge,
                self._delete_row,
                self._end_row,
                self._put_index,
                self._delete_index,
                self._link,
                self._unlink,
                self._put_key,
                self._delete_key,
                self._link_key,
                self._unlink_key,
                self._put_redirect,
                self._delete_redirect,
                self._park,
                self._unpark,
            )
        }

    def apply(self, mutations: Iterable[Mutation]) -> int:
        """Write every mutation; returns the number of requests sent."""
        mutations = list(mutations)
        refused = [(mutation, found) for mutation in mutations if (found := refusal(mutation)) is not None]
        if refused:
            reason, message = refused[0][1]
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise StoreRejected(reason, message + more)
        partitions: dict[Hashable, list[tuple[BoundStatement, int]]] = defaultdict(list)
        applied_at = datetime.now(UTC)
        for mutation in mutations:
            partition, (statement, params) = self._bind(mutation, applied_at)
            bound = self._binders[statement.query_id].bind(params)
            partitions[partition].append((bound, _serialized_bytes(bound)))
        # Requests, not statements, are what the driver pays for: pack the partitions owned by the same
        # replicas (and, on ScyllaDB, the same shard) into one unlogged batch, within a statement and
        # byte budget. Each partition stays whole in one request where it fits, so its mutation is
        # still applied atomically; a partition over the budget is split, and a statement over it
        # travels alone (a single statement is no batch, so no batch limit applies to it).
        requests: dict[Hashable, list[list[BoundStatement]]] = defaultdict(list)
        # Bytes and partition count of the last (open) chunk of each request key.
        open_bytes: dict[Hashable, int] = defaultdict(int)
        open_partitions: dict[Hashable, int] = defaultdict(int)
        for partition, statements in partitions.items():
            size = sum(bytes_ for _bound, bytes_ in statements)
            key = self._replica_key(statements[0][0]) if self._batch_partitions > 1 else None
            key = key if key is not None else ("partition", partition)
            chunks = requests[key]
            if (
                chunks
                and len(chunks[-1]) + len(statements) <= _MAX_STATEMENTS_PER_BATCH
                and open_bytes[key] + size <= _MAX_BATCH_BYTES
                and open_partitions[key] < self._batch_partitions
            ):
                chunks[-1].extend(bound for bound, _bytes in statements)
                open_bytes[key] += size
                open_partitions[key] += 1
                continue
            chunk: list[BoundStatement] = []
            chunk_bytes = 0
            for bound, bytes_ in statements:
                if chunk and (
                    len(chunk) >= _MAX_STATEMENTS_PER_BATCH or chunk_bytes + bytes_ > _MAX_BATCH_BYTES
                ):
                    chunks.append(chunk)
                    chunk, chunk_bytes = [], 0
                chunk.append(bound)
                chunk_bytes += bytes_
            chunks.append(chunk)
            open_bytes[key] = chunk_bytes
            open_partitions[key] = 1
        work: list[tuple[Any, Any]] = []
        for chunks in requests.values():
            for chunk in chunks:
                if len(chunk) == 1:
                    work.append((chunk[0], None))
                    continue
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for bound in chunk:
                    batch.add(bound)
                work.append((batch, None))
        if work:
            self._execute(work)
        return len(work)

    def _replica_key(self, bound: BoundStatement) -> Hashable | None:
        token_map = self._metadata.token_map
        routing_key = bound.routing_key
        if token_map is None or routing_key is None:
            return None
        token = token_map.token_class.from_key(routing_key)
        replicas = token_map.get_replicas(self._keyspace, token)
        if not replicas:
            return None
        sharding = getattr(replicas[0], "sharding_info", None)
        shard = sharding.shard_id_from_token(token.value) if sharding is not None else None
        return (tuple(sorted(str(host.endpoint) for host in replicas)), shard)

    def _execute(self, work: Sequence[tuple[Any, Any]]) -> None:
        started = time.monotonic()
        try:
            results = execute_concurrent(
                self._session, work, concurrency=self._concurrency, raise_on_first_error=False
            )
        except PERMANENT_ERRORS as exc:
            raise StoreRejected("invalid_request", f"the store refused the write: {exc}") from exc
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailable(f"store write failed: {exc}") from exc
        failures = [result for ok, result in results if not ok]
        if not failures:
            return
        refused = [failure for failure in failures if isinstance(failure, PERMANENT_ERRORS)]
        if refused:
            raise StoreRejected(
                "invalid_request",
                f"the store refused {len(refused)} of {len(work)} writes, first: {refused[0]}",
            )
        raise StoreUnavailable(
            f"{len(failures)} of {len(work)} store writes failed after "
            f"{time.monotonic() - started:.1f}s, first: {failures[0]!r}"
        )

    def _bind(
        self, mutation: Mutation, applied_at: datetime
    ) -> tuple[Hashable, tuple[PreparedStatement, tuple[Any, ...]]]:
        match mutation:
            case PutRow(key=key, attributes=attributes, replace=replace, write_ts=ts, source_ts_us=src):
                cells = {name: encode_value(value) for name, value in attributes.items()}
                ended = _from_us(mutation.ended_at_us)
                if replace:
                    params: tuple[Any, ...] = (
                        key.customer_id,
                        key.kind,
                        key.source,
                        key.table,
                        key.entity_id,
                        cells,
                        src,
                        applied_at,
                        mutation.home_id,
                        ended,
                        ts,
                    )
                    return ("v", key.customer_id), (self._put_replace, params)
                params = (
                    ts,
                    cells,
                    src,
                    applied_at,
                    mutation.home_id,
                    ended,
                    key.customer_id,
                    key.kind,
                    key.source,
                    key.table,
                    key.entity_id,
                )
                return ("v", key.customer_id), (self._put_merge, params)
            case DeleteRow(key=key, write_ts=ts):
                params = (ts, key.customer_id, key.kind, key.source, key.table, key.entity_id)
                return ("v", key.customer_id), (self._delete_row, params)
            case EndRow(key=key, write_ts=ts):
                params = (ts, _from_us(ts), key.customer_id, key.kind, key.source, key.table, key.entity_id)
                return ("v", key.customer_id), (self._end_row, params)
            case PutIndex(entry=entry, write_ts=ts):
                ref = entry.ref
                bucket = bucket_of(ref.entity_id)
                return ("i", ref.source, ref.table, bucket), (self._put_index, (*_index_params(entry), ts))
            case DeleteIndex(ref=ref, write_ts=ts):
                bucket = bucket_of(ref.entity_id)
                params = (ts, ref.source, ref.table, bucket, ref.entity_id)
                return ("i", ref.source, ref.table, bucket), (self._delete_index, params)
            case LinkChild(parent=parent, child=child, write_ts=ts):
                params = (parent.source, parent.table, parent.entity_id, child.table, child.entity_id, ts)
                return ("c", parent.source, parent.table, parent.entity_id), (self._link, params)
            case UnlinkChild(parent=parent, child=child, write_ts=ts):
                params = (ts, parent.source, parent.table, parent.entity_id, child.table, child.entity_id)
                return ("c", parent.source, parent.table, parent.entity_id), (self._unlink, params)
            case PutKey(key=key, owner=owner, write_ts=ts):
                params = (*_key_params(key), owner.entity_id, ts)
                return ("k", *_key_params(key)), (self._put_key, params)
            case DeleteKey(key=key, owner=owner, write_ts=ts):
                params = (ts, *_key_params(key), owner.entity_id)
                return ("k", *_key_params(key)), (self._delete_key, params)
            case LinkKeyChild(key=key, child=child, write_ts=ts):
                params = (*_key_params(key), child.source, child.table, child.entity_id, ts)
                return ("kc", *_key_params(key)), (self._link_key, params)
            case UnlinkKeyChild(key=key, child=child, write_ts=ts):
                params = (ts, *_key_params(key), child.source, child.table, child.entity_id)
                return ("kc", *_key_params(key)), (self._unlink_key, params)
            case PutRedirect(customer_id=customer, survivor_id=survivor, write_ts=ts):
                return ("r", customer), (self._put_redirect, (customer, survivor, ts))
            case DeleteRedirect(customer_id=customer, write_ts=ts):
                return ("r", customer), (self._delete_redirect, (ts, customer))
            case Park(ref=ref, write_ts=ts):
                params = (ref.source, ref.table, ref.entity_id, ts)
                return ("p", ref.source, ref.table), (self._park, params)
            case Unpark(ref=ref, write_ts=ts):
                params = (ts, ref.source, ref.table, ref.entity_id)
                return ("p", ref.source, ref.table), (self._unpark, params)
        raise TypeError(f"unknown mutation {mutation!r}")


def _from_us(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


def _key_params(key: KeyRef) -> tuple[str, str, str, str]:
    return (key.source, key.table, key.key, key.value)


def _index_params(entry: IndexEntry) -> tuple[Any, ...]:
    ref, parent = entry.ref, entry.parent
    parent_source: str | None
    parent_table: str | None
    parent_key: str | None
    parent_id: str | None
    if isinstance(parent, KeyRef):
        parent_source, parent_table, parent_key, parent_id = (
            parent.source,
            parent.table,
            parent.key,
            parent.value,
        )
    elif isinstance(parent, EntityRef):
        parent_source, parent_table, parent_key, parent_id = None, parent.table, None, parent.entity_id
    else:
        parent_source = parent_table = parent_key = parent_id = None
    return (
        ref.source,
        ref.table,
        bucket_of(ref.entity_id),
        ref.entity_id,
        entry.kind,
        entry.customer_id,
        parent_table,
        parent_id,
        entry.owner_ts,
        entry.home_id,
        parent_source,
        parent_key,
        dict(entry.keys),
    )
