"""factory-boy factories for the messaging tests' commands and aggregates.

Call ``.build()`` (typed as returning the model); factory-boy's declarations
are untyped, hence the ignores.
"""

from __future__ import annotations

from uuid import uuid4

from factory.base import Factory
from factory.declarations import LazyFunction, Sequence

from tests.messaging.sample import Add, Counter, OpenCounter, TakeNote


class CounterFactory(Factory[Counter]):
    class Meta:
        model = Counter

    id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    value = 0


class OpenCounterFactory(Factory[OpenCounter]):
    class Meta:
        model = OpenCounter

    counter_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]


class AddFactory(Factory[Add]):
    class Meta:
        model = Add

    counter_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    by = 1


class TakeNoteFactory(Factory[TakeNote]):
    class Meta:
        model = TakeNote

    counter_id = LazyFunction(uuid4)  # type: ignore[no-untyped-call]
    text = Sequence(lambda n: f"note-{n:04d}")  # type: ignore[no-untyped-call]
