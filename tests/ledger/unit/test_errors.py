"""Entrypoints map errors by ``code``; the codes are part of the contract."""

from __future__ import annotations

import pytest

from domain.errors import DomainError, NotFound
from domain.ledger import errors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.AccountNotFound, "account_not_found"),
        (errors.TransferNotFound, "transfer_not_found"),
        (errors.InsufficientFunds, "insufficient_funds"),
        (errors.ReferenceReused, "reference_reused"),
        (errors.CurrencyMismatch, "currency_mismatch"),
        (errors.SameAccount, "same_account"),
        (errors.InvalidAmount, "invalid_amount"),
        (errors.InvalidCurrency, "invalid_currency"),
        (errors.InvalidReference, "invalid_reference"),
        (errors.InvalidOwner, "invalid_owner"),
        (errors.InvalidLimit, "invalid_limit"),
        (errors.AccountAlreadyExists, "account_exists"),
    ],
)
def test_each_refusal_carries_its_stable_code(error: type[DomainError], code: str) -> None:
    refusal = error("why")

    assert (refusal.code, refusal.detail) == (code, "why")


@pytest.mark.parametrize("error", [errors.AccountNotFound, errors.TransferNotFound])
def test_missing_things_are_not_found_errors(error: type[DomainError]) -> None:
    assert issubclass(error, NotFound)
