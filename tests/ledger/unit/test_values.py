"""The value rules every amount, currency, reference and owner passes through."""

from __future__ import annotations

from typing import Any

import pytest

from domain.ledger.errors import InvalidAmount, InvalidCurrency, InvalidOwner, InvalidReference
from domain.ledger.values import check_amount, check_currency, check_owner, check_reference

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("amount", [1, 10**12])
def test_amounts_from_one_cent_to_a_trillion_are_accepted(amount: int) -> None:
    assert check_amount(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, 10**12 + 1, 1.0, True, "5", None])
def test_amounts_outside_the_range_or_not_integers_are_refused(amount: Any) -> None:
    with pytest.raises(InvalidAmount):
        check_amount(amount)


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "E1R", "ÉUR", "", None])
def test_currencies_not_shaped_like_iso_4217_are_refused(currency: Any) -> None:
    with pytest.raises(InvalidCurrency):
        check_currency(currency)


def test_a_three_letter_upper_case_currency_is_accepted() -> None:
    assert check_currency("JPY") == "JPY"


@pytest.mark.parametrize("reference", ["", "x" * 101, "tab\there", "line\nbreak", None])
def test_references_empty_too_long_or_unprintable_are_refused(reference: Any) -> None:
    with pytest.raises(InvalidReference):
        check_reference(reference)


@pytest.mark.parametrize("reference", ["a", "x" * 100, "order 42 / première"])
def test_references_of_1_to_100_printable_characters_are_accepted(reference: str) -> None:
    assert check_reference(reference) == reference


@pytest.mark.parametrize("owner", ["", "x" * 201, None])
def test_owners_outside_1_to_200_characters_are_refused(owner: Any) -> None:
    with pytest.raises(InvalidOwner):
        check_owner(owner)
