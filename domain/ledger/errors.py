"""The ledger's refusals, each with the stable ``code`` the contract names.

Entrypoints map these codes to HTTP statuses and ``CommandRejected`` messages;
the prose in ``detail`` is for people and may change.
"""

from __future__ import annotations

from domain.errors import Conflict, DomainError, InvalidValue, NotFound


class AccountNotFound(NotFound):
    code = "account_not_found"


class TransferNotFound(NotFound):
    code = "transfer_not_found"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class ReferenceReused(Conflict):
    """The idempotency reference was already used for a request with another body."""

    code = "reference_reused"


class AccountAlreadyExists(Conflict):
    """An account id supplied by the caller is taken by an account with other details."""

    code = "account_exists"


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"


class SameAccount(DomainError):
    code = "same_account"


class InvalidAmount(InvalidValue):
    code = "invalid_amount"


class InvalidCurrency(InvalidValue):
    code = "invalid_currency"


class InvalidReference(InvalidValue):
    code = "invalid_reference"


class InvalidOwner(InvalidValue):
    code = "invalid_owner"


class InvalidLimit(InvalidValue):
    code = "invalid_limit"
