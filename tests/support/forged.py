"""Tokens an attacker would try, built by hand: PyJWT rightly refuses to make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.tokens import AUDIENCE, ISSUER, PUBLIC_KEY_PEM


def _part(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(subject: str = "mallory", scope: str = "ledger:read ledger:write") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "scope": scope,
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }


def unsigned_token(subject: str = "mallory") -> str:
    """``alg: none``: no signature at all."""
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims(subject))}."


def hmac_with_public_key_token(subject: str = "mallory") -> str:
    """HS256 "signed" with the service's public key: the classic key-confusion attack."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT'})}.{_part(claims(subject))}"
    digest = hmac.new(PUBLIC_KEY_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"
