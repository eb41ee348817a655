"""factory-boy factories for the kernel tests' domain objects.

Call ``.build()`` (typed as returning the model) rather than the factory
itself; factory-boy's declarations are untyped, hence the ignores.
"""

from __future__ import annotations

from decimal import Decimal

from factory.base import Factory
from factory.declarations import Sequence

from tests.kernel.parts import Part
from tests.kernel.things import Thing


class ThingFactory(Factory[Thing]):
    class Meta:
        model = Thing

    name = Sequence(lambda n: f"thing-{n:04d}")  # type: ignore[no-untyped-call]
    count = 0


class PartFactory(Factory[Part]):
    class Meta:
        model = Part

    name = Sequence(lambda n: f"part-{n:04d}")  # type: ignore[no-untyped-call]
    stock = 0
    price = Decimal("1.00")
    retired_at = None
