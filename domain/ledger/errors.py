"""The ledger's refusals, each with the stable ``code`` the contract names.

Entrypoints map these codes to HTTP statuses and ``CommandRejected`` messages;
the prose in ``detail`` is for people and may change.
"""

from __future__ import annotations

from domain.errors import DomainError, NotFound


class AccountNotFound(NotFound):
    code = "account_not_found"


class TransferNotFound(NotFound):
    code = "transfer_not_found"


class InsufficientFunds(DomainError):
    code = "insufficient_funds"


class ReferenceReused(DomainError):
    """The idempotency reference was already used for a request with another body."""

    code = "reference_reused"


class AccountAlreadyExists(DomainError):
    """An account id supplied by the caller is taken by an account with other details."""

    code = "account_exists"


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"


class SameAccount(DomainError):
    code = "same_account"


class InvalidValue(DomainError):
    """A value the domain refuses on its own, whatever the entrypoint validated before."""

    code = "invalid_value"


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


class InvalidCursor(InvalidValue):
    code = "invalid_cursor"
