"""Domain messages to and from the contract's wire format."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.serialization import MalformedMessage, decode
from tests.messaging.factories import AddFactory, CounterFactory
from tests.messaging.sample import Add, Added, NoteTaken
from tests.messaging.sample_service import EVENTS_STREAM, make_registry

pytestmark = pytest.mark.unit


def test_a_command_travels_as_the_contract_envelope() -> None:
    command = AddFactory.build(by=7)

    message = make_registry().to_message(command)

    assert message == {
        "message_id": command.message_id,
        "type": "Add",
        "occurred_at": command.issued_at.isoformat(),
        "payload": {"counter_id": str(command.counter_id), "by": 7},
    }


def test_a_command_comes_back_equal_to_what_was_sent() -> None:
    registry = make_registry()
    command = AddFactory.build()

    assert registry.from_message(registry.to_message(command)) == command


def test_a_message_id_that_is_not_a_uuid_is_kept_as_sent() -> None:
    counter_id = str(uuid4())
    raw = (
        '{"message_id": "cmd-1", "type": "Add", "occurred_at": "2025-01-02T03:04:05Z",'
        f' "payload": {{"counter_id": "{counter_id}", "by": 3}}}}'
    )

    command = make_registry().from_message(raw)

    assert isinstance(command, Add)
    assert command.message_id == "cmd-1"


def test_a_payload_of_the_wrong_type_is_malformed_and_names_the_field() -> None:
    message = make_registry().to_message(AddFactory.build())
    message["payload"]["by"] = "lots"

    with pytest.raises(MalformedMessage, match=r"Add is invalid: by"):
        make_registry().from_message(message)


def test_an_unknown_type_is_malformed() -> None:
    message = make_registry().to_message(AddFactory.build())
    message["type"] = "Subtract"

    with pytest.raises(MalformedMessage, match="unknown message type 'Subtract'"):
        make_registry().from_message(message)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "Add", "payload": {}}', "message_id"),
        ('{"message_id": "m", "type": "Add", "payload": 3}', "payload"),
    ],
)
def test_a_broken_envelope_is_malformed_and_says_why(raw: str, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(raw)


def test_a_published_event_gets_its_stream_and_its_aggregate_as_key() -> None:
    counter = CounterFactory.build()
    event = Added(counter_id=counter.id, by=1, value=1)

    outgoing = make_registry().outgoing(event, source=counter)

    assert outgoing is not None
    assert (outgoing.stream, outgoing.key) == (EVENTS_STREAM, f"Counter:{counter.id}")
    assert outgoing.as_message()["message_id"] == str(event.event_id)


def test_an_event_without_a_stream_is_not_published() -> None:
    event = NoteTaken(note_id=uuid4(), counter_id=uuid4())

    assert make_registry().outgoing(event) is None


def test_registering_a_second_class_under_a_taken_name_is_refused() -> None:
    registry = make_registry()

    with pytest.raises(ValueError, match="already registered"):
        registry.register(NoteTaken, name="Add")
