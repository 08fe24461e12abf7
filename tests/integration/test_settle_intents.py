"""Settling work left by a process killed between writing a batch and settling it, on the real store:
the intents table (store/intents.py), another process finishing a holder change whose cards had not
followed and whose old copy a cut write left behind (consumer/applier.py ``finish_intents``), and the
replicator doing it in its settling round.

The kill is a cut writer over the real writer (tests/kills.py); the store is the stack's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cassandra.cluster import Session

from consumer.applier import Applier, ViewWrites
from consumer.index_cache import IndexCache
from scv.contracts.registration import SourceMapping
from store.index import EntityIndex
from store.intents import SettleIntents, SettleWork
from store.mutations import DeleteRow, EntityRef, KeyRef
from store.registrations import RegistrationStore
from store.truncations import TruncationLog
from store.writer import ViewWriter
from tests.changes import ACCOUNTS, CARDS, change
from tests.integration.conftest import Isolated, start_replicator, wait_for
from tests.kills import CutWriter, Killed


def _now_us() -> int:
    return time.time_ns() // 1000


def test_intents_are_listed_once_old_enough_and_cleared_at_their_timestamp(
    store_session: Session, isolated: Isolated
) -> None:
    intents = SettleIntents(store_session, isolated.keyspace)
    work = SettleWork(
        partitions=frozenset({"7"}),
        entities=frozenset({EntityRef("core", "public.accounts", "1")}),
        keys=frozenset({KeyRef("crm", "public.customers", "fiscal_code", "RSSMRA80A01H501U")}),
        merged=frozenset({"8", "9"}),
    )
    ts = _now_us()
    intents.record("worker-a", 0, work, ts)
    intents.record("worker-b", 3, SettleWork(partitions=frozenset({"5"})), ts + 1)

    pending = intents.pending(written_before_us=ts + 10)
    assert sorted((p.worker, p.seq, p.work.to_json(), p.written_us) for p in pending) == [
        ("worker-a", 0, work.to_json(), ts),
        ("worker-b", 3, SettleWork(partitions=frozenset({"5"})).to_json(), ts + 1),
    ]
    assert [p.worker for p in intents.pending(written_before_us=ts + 1)] == ["worker-a"]

    # Cleared at an older timestamp than a rewrite: the rewrite stays (a delete wins only a tie).
    intents.record("worker-b", 3, SettleWork(partitions=frozenset({"6"})), ts + 5)
    intents.done("worker-b", 3, ts + 1)
    intents.done("worker-a", 0, ts)
    left = intents.pending(written_before_us=ts + 10)
    assert [(p.worker, p.work.partitions) for p in left] == [("worker-b", frozenset({"6"}))]


def _half_moved(store_session: Session, keyspace: str) -> EntityIndex:
    """Account 1 moved from customer 7 to 8 by a process killed mid-way: the account's row and entry
    at 8, its copy at 7 (the cut lost that delete), its card 9 still at 7; the batch replayed."""
    writer, index = ViewWriter(store_session, keyspace), EntityIndex(store_session, keyspace)

    def process(view_writes: ViewWrites = writer) -> Applier:
        return Applier(
            view_writes,
            index,
            IndexCache(0),
            truncations=TruncationLog(store_session, keyspace),
            intents=SettleIntents(store_session, keyspace),
        )

    process().apply(
        [
            change(ACCOUNTS, "c", {"account_id": 1}, {"account_id": 1, "customer_id": 7}, 900),
            change(CARDS, "c", {"card_id": 9}, {"card_id": 9, "account_id": 1}, 1_000),
        ]
    )
    moved = change(ACCOUNTS, "u", {"account_id": 1}, {"account_id": 1, "customer_id": 8}, 2_000)
    cut = CutWriter(writer, at=lambda m: isinstance(m, DeleteRow), lost=lambda m: isinstance(m, DeleteRow))
    with pytest.raises(Killed):
        process(cut).apply([moved])
    process().apply([moved])  # the replay: the account is at 8 already, nothing to move
    assert _partitions(index) == {"7": {"1", "9"}, "8": {"1"}}
    return index


def _partitions(index: EntityIndex) -> dict[str, set[str]]:
    rows = index.partition_rows(["7", "8"])
    return {customer: {row.key.entity_id for row in found} for customer, found in rows.items()}


def test_a_holder_change_cut_before_its_cards_follow_is_finished_by_another_process(
    store_session: Session, isolated: Isolated
) -> None:
    ks = isolated.keyspace
    index = _half_moved(store_session, ks)
    intents = SettleIntents(store_session, ks)
    finisher = Applier(
        ViewWriter(store_session, ks), index, IndexCache(0), TruncationLog(store_session, ks), intents=intents
    )
    assert finisher.finish_intents(grace_s=3600) == 0  # a live process's recent work is its own
    finished = finisher.finish_intents(grace_s=-1.0)

    assert finished == 1
    assert _partitions(index) == {"7": set(), "8": {"1", "9"}}
    card = EntityRef("core", "public.cards", "9")
    entry = index.get_many([card])[card]
    assert entry is not None
    assert entry.customer_id == "8"
    assert intents.pending(written_before_us=_now_us() + 1_000_000) == []


def test_the_replicator_finishes_a_dead_process_settling_in_its_settling_round(
    store_session: Session, isolated: Isolated, tmp_path: Path
) -> None:
    index = _half_moved(store_session, isolated.keyspace)
    # A registered source, so the replicator subscribes and runs its settling rounds.
    RegistrationStore(store_session, isolated.keyspace).put(
        "core", SourceMapping.build("core", "core", [ACCOUNTS, CARDS]).to_json()
    )
    worker = start_replicator(
        tmp_path,
        9491,
        isolated.group,
        isolated.env(SCV_CONSUMER__SETTLE_INTENT_GRACE_S="0", SCV_CONSUMER__PARKED_SETTLE_S="1"),
    )
    try:
        wait_for(
            lambda: _partitions(index) == {"7": set(), "8": {"1", "9"}},
            timeout_s=60,
            what="the replicator to settle the half-moved account",
        )
        assert "settle_intent_finished" in worker.log_path.read_text()
    finally:
        worker.stop()


def test_a_replicator_on_a_schema_without_the_intents_table_says_to_migrate_and_exits(
    store_session: Session, isolated: Isolated, tmp_path: Path
) -> None:
    # A keyspace migrated by an earlier release.
    store_session.execute(f"DROP TABLE {isolated.keyspace}.settle_intents", timeout=60)
    worker = start_replicator(tmp_path, 9492, isolated.group, isolated.env())
    try:
        code = worker.process.wait(timeout=60)
    finally:
        worker.stop()

    assert code == 1
    log = worker.log_tail()
    assert "settle_intents" in log
    assert "run `scv store migrate`" in log
    assert "Traceback" not in log
