"""KafkaAdmin's failure contract, against a port where nothing listens (no broker needed): every
question Kafka leaves unanswered is ``KafkaUnavailable`` naming the question, which callers retry
or report; never a bare ``TimeoutError`` that crashes a process starting while the broker restarts."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from scv.kafka.admin import KafkaAdmin, KafkaUnavailable


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("question", "named"),
    [
        (
            lambda k: k.ensure_topic("scv.dead-letter", partitions=1, replication_factor=1),
            "topic scv.dead-letter",
        ),
        (lambda k: k.delete_topics(["gone"]), "topic gone"),
        (lambda k: k.group_ids(), "consumer groups"),
        (lambda k: k.delete_groups(["g1"]), "group g1"),
        (lambda k: k.committed("g1", ["t"]), "Kafka at 127.0.0.1"),
    ],
    ids=["ensure_topic", "delete_topics", "group_ids", "delete_groups", "committed"],
)
def test_a_question_kafka_does_not_answer_is_kafka_unavailable(
    question: Callable[[KafkaAdmin], object], named: str
) -> None:
    admin = KafkaAdmin(f"127.0.0.1:{_closed_port()}", timeout_s=0.5)
    with pytest.raises(KafkaUnavailable, match=named):
        question(admin)
