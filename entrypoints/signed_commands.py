"""Commands from a broker: signed by their sender, made for a principal.

On a broker other processes can write to (``BROKER_URL``), whoever can
``XADD`` could otherwise move anyone's money. So a command's stream entry
carries ``sig``: the lower-case hex HMAC-SHA256 of the exact ``data`` text
under ``COMMAND_SIGNING_KEY``, compared in constant time. An unsigned or
wrongly signed entry goes to the dead letters with the reason
``unauthenticated`` and changes nothing. The in-process broker lives inside
the service, so it needs no signature.

The envelope (the JSON in ``data``) names the ``principal`` the command is
made for; the service layer then applies the same ownership rules to it as
to an HTTP caller. A signature vouches for the whole ``data`` text, so the
principal cannot be swapped without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from typing import Any

from adapters.brokers import Delivery, DeliveryHandler
from adapters.serialization import MalformedMessage, MessageRegistry, encode
from adapters.settings import ConfigurationError, Settings
from domain.messages import Command
from domain.principal import Principal
from domain.text import unsafe_character

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "sig"
PRINCIPAL_FIELD = "principal"
UNAUTHENTICATED = "unauthenticated"
"""The dead-letter reason of a command whose signature is missing or wrong."""
MAX_SUBJECT_LENGTH = 200


def sign(data: str, key: str) -> str:
    """The ``sig`` of a command entry whose ``data`` field is ``data``."""
    return hmac.new(key.encode(), data.encode(), hashlib.sha256).hexdigest()


def signature_matches(data: str, signature: str, key: str) -> bool:
    """Whether ``signature`` is ``data``'s, compared in constant time."""
    return hmac.compare_digest(sign(data, key).encode(), signature.strip().lower().encode())


def signing_key(settings: Settings) -> str | None:
    """The key commands must be signed with; ``None`` on the in-process broker.

    Raises :class:`ConfigurationError` on a real broker without one: a
    consumer that took unsigned commands from a shared Redis would let anyone
    who can reach it act as anyone.
    """
    if not settings.broker_url:
        return None
    if settings.command_signing_key is None or not settings.command_signing_key.get_secret_value():
        raise ConfigurationError(
            "COMMAND_SIGNING_KEY is not set: with BROKER_URL, commands arrive from a broker "
            "other processes can write to, and are only taken when signed with that key"
        )
    return settings.command_signing_key.get_secret_value()


def require_signature(handler: DeliveryHandler, key: str | None) -> DeliveryHandler:
    """``handler`` behind the signature check (none when ``key`` is ``None``)."""
    if key is None:
        return handler

    async def checked(delivery: Delivery) -> None:
        signature = delivery.headers.get(SIGNATURE_FIELD)
        if not signature or not signature_matches(delivery.raw, signature, key):
            logger.warning(
                "command refused: its signature is missing or wrong",
                extra={
                    "stream": delivery.stream,
                    "message_id": delivery.message.get("message_id"),
                    "signed": bool(signature),
                },
            )
            raise MalformedMessage(UNAUTHENTICATED)
        await handler(delivery)

    return checked


def principal_of(delivery: Delivery) -> Principal:
    """The principal the command's envelope names; :class:`MalformedMessage` if none."""
    try:
        envelope = json.loads(delivery.raw)
    except ValueError:
        raise MalformedMessage("message is not valid JSON") from None
    subject = envelope.get(PRINCIPAL_FIELD) if isinstance(envelope, dict) else None
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
        raise MalformedMessage(
            f"message envelope is invalid: {PRINCIPAL_FIELD}: must be the subject the "
            f"command is made for, text of 1 to {MAX_SUBJECT_LENGTH} characters"
        )
    if unsafe_character(subject) is not None:
        raise MalformedMessage(
            f"message envelope is invalid: {PRINCIPAL_FIELD}: holds characters text must not hold"
        )
    return Principal(subject=subject)


def with_principal(delivery: Delivery, principal: Principal) -> Delivery:
    """The delivery with the principal put where the command's ``principal`` field is read."""
    payload = {**delivery.message["payload"], PRINCIPAL_FIELD: {"subject": principal.subject}}
    return replace(delivery, message={**delivery.message, "payload": payload})


def command_envelope(registry: MessageRegistry, command: Command) -> dict[str, Any]:
    """A command's wire form as a sender writes it: the principal in the envelope."""
    message = registry.to_message(command)
    principal = message["payload"].pop(PRINCIPAL_FIELD, None)
    if isinstance(principal, dict):
        message[PRINCIPAL_FIELD] = principal["subject"]
    return message


def signed_entry(message: dict[str, Any], key: str) -> dict[str, str]:
    """The Redis Streams fields of a signed command: ``data`` and its ``sig``."""
    data = encode(message)
    return {"data": data, SIGNATURE_FIELD: sign(data, key)}
