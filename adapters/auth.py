"""Bearer tokens: verify a JWT into a :class:`~domain.principal.Principal`, or mint one for dev.

Verification is PyJWT's, with everything pinned that a JWT library would
otherwise let the token decide: the algorithms come from an allow-list of
asymmetric ones (so neither ``alg: none`` nor an HMAC token "signed" with the
public key can pass), and ``iss``, ``aud``, ``exp`` and ``sub`` are required,
``nbf`` checked when present, with a few seconds of clock skew at most.

Keys come from configuration, in this order:

- ``AUTH_JWKS_URL``: a JWKS document, fetched on first use, cached for
  ``AUTH_JWKS_CACHE_SECONDS`` and fetched again when a token names a ``kid``
  the cache does not hold (a rotated key), at most every few seconds;
- ``AUTH_PUBLIC_KEY``: one PEM public key (the text, or a file's path);
- neither: a development key pair in ``AUTH_DEV_KEY_FILE``, created on first
  use. Only then can :func:`token_issuer` mint tokens (``keel token``).

Errors never carry the token or a key: :class:`AuthenticationError` says what
was wrong in words a client may read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.settings import Settings
from domain.principal import Principal
from domain.text import unsafe_character

logger = logging.getLogger(__name__)

DEV_ALGORITHM = "ES256"
"""The development key is an EC P-256 key; its tokens are ES256."""
DEV_KEY_ID = "keel-dev"
MAX_SUBJECT_LENGTH = 200
JWKS_MIN_REFRESH_SECONDS = 5.0
"""Tokens naming unknown ``kid``s cannot make Keel fetch the JWKS more often than this."""
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 1024 * 1024
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
VERIFIED_CACHE_SIZE = 4096
"""Tokens remembered at most; the least recently used one goes first."""


class AuthenticationError(Exception):
    """The token cannot be accepted; the message says why and never repeats the token."""


class AuthConfigurationError(ValueError):
    """The authentication settings cannot work; the message names the setting."""


class KeySource(Protocol):
    """Where the public key that checks a token's signature comes from."""

    async def key_for(self, kid: str | None) -> Any:
        """The verification key for ``kid``; :class:`AuthenticationError` if there is none."""
        ...


# -- key sources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaticKey:
    """One public key: every token must be signed by its private half."""

    key: Any

    async def key_for(self, kid: str | None) -> Any:
        return self.key


def load_public_key(value: str) -> Any:
    """A public key from PEM text or from the path of a PEM file (``AUTH_PUBLIC_KEY``)."""
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        path = Path(text).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise AuthConfigurationError(
                f"AUTH_PUBLIC_KEY is neither PEM text nor a readable file ({exc.strerror})"
            ) from None
    try:
        return serialization.load_pem_public_key(text.encode())
    except ValueError:
        raise AuthConfigurationError(
            "AUTH_PUBLIC_KEY is not a PEM public key ('-----BEGIN PUBLIC KEY-----')"
        ) from None


class JwksKeys:
    """The keys of a JWKS document, cached and fetched again on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = JWKS_MIN_REFRESH_SECONDS,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str | None, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Any:
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self.cache_seconds
        if stale or (kid not in self._keys and self._may_refresh(now)):
            await self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise AuthenticationError("the token is signed with a key this service does not know")

    def _may_refresh(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.min_refresh_seconds

    async def _refresh(self) -> None:
        async with self._lock:
            try:
                document = await asyncio.to_thread(self._fetch)
                keys = jwt.PyJWKSet.from_dict(document)
            except Exception as exc:
                # Keep the keys we had: an IdP blip must not log everyone out.
                logger.warning(
                    "could not fetch the JWKS; keeping the cached keys",
                    extra={"jwks_url": self.url, "cause": type(exc).__name__},
                )
                if self._fetched_at is None and not self._keys:
                    raise AuthenticationError(
                        "the keys to check the token with are unavailable; try again later"
                    ) from None
                self._fetched_at = time.monotonic()
                return
            self._keys = {jwk.key_id: jwk.key for jwk in keys.keys}
            self._fetched_at = time.monotonic()

    def _fetch(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_SECONDS) as response:
            body = response.read(JWKS_MAX_BYTES + 1)
        if len(body) > JWKS_MAX_BYTES:
            raise ValueError("JWKS document too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("JWKS document is not a JSON object")
        return document


class DevKeyPair:
    """The development signing key: an EC P-256 private key in a local PEM file.

    Made on first use with mode 0600; two processes starting at once agree on
    one file (the second finds the first's). Never for production: whoever
    reads the file can mint any token.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._private: ec.EllipticCurvePrivateKey | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        if self._private is None:
            self._private = self._load() or self._create()
        return self._private

    async def key_for(self, kid: str | None) -> Any:
        return self.private_key().public_key()

    def _load(self) -> ec.EllipticCurvePrivateKey | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise AuthConfigurationError(
                f"AUTH_DEV_KEY_FILE {self.path} does not hold an EC private key"
            )
        return key

    def _create(self) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._load() or key
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        logger.warning(
            "created a development signing key; never use it in production",
            extra={"path": str(self.path)},
        )
        return key


# -- verification -------------------------------------------------------------------------


def _reason(exc: jwt.PyJWTError) -> str:
    """What was wrong with the token, in words that repeat nothing of it."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf)"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is not meant for this service (aud)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token comes from an issuer this service does not trust (iss)"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "the token's signature algorithm is not allowed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, jwt.DecodeError):
        return "the token is not a well-formed JWT"
    return "the token is not valid"


class TokenVerifier:
    """Checks a bearer token and answers the principal it speaks for."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str],
        leeway: float = 5.0,
        cache_seconds: float = 0.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.cache_seconds = cache_seconds
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The token's principal; a token verified in the last ``cache_seconds`` is not redone.

        An ES256 signature check costs ~0.1 ms of CPU, as much as the rest of a
        primary-key read, and a client sends the same token until it expires.
        A remembered token is answered until ``cache_seconds`` after its check
        and never past its ``exp`` (with the usual skew): the answer the full
        check would give. Refusals are never remembered. ``0`` checks every time.
        """
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None:
            valid_until, principal = remembered
            if now < valid_until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._check(token)
        if self.cache_seconds > 0:
            self._verified[token] = (
                min(expires + self.leeway, now + self.cache_seconds),
                principal,
            )
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    async def _check(self, token: str) -> tuple[Principal, float]:
        """The principal and the ``exp`` of a token checked in full."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            # Refused before any key is looked at: 'none' and HS256 never get that far.
            raise AuthenticationError("the token's signature algorithm is not allowed")
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        except (ValueError, TypeError):  # a key of another type than the algorithm's
            raise AuthenticationError("the token's signature does not verify") from None
        return _principal(claims), float(claims["exp"])


def _principal(claims: Mapping[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT_LENGTH:
        raise AuthenticationError(
            f"the token's 'sub' must be text of 1 to {MAX_SUBJECT_LENGTH} characters"
        )
    if unsafe_character(subject) is not None:
        raise AuthenticationError("the token's 'sub' holds characters text must not hold")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise AuthenticationError("the token's 'scope' must be space-separated text")
    return Principal(subject=subject, scopes=frozenset(scope.split()))


# -- minting (development only) ------------------------------------------------------------


class TokenIssuer:
    """Mints tokens with the development key, for ``keel token`` and for tests."""

    def __init__(
        self,
        private_key: Any,
        *,
        issuer: str,
        audience: str,
        algorithm: str = DEV_ALGORITHM,
        key_id: str | None = DEV_KEY_ID,
    ) -> None:
        self.private_key = private_key
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.key_id = key_id

    def mint(
        self,
        subject: str,
        *,
        scopes: Iterable[str] = (),
        ttl: timedelta = timedelta(hours=1),
        now: datetime | None = None,
        **claims: Any,
    ) -> str:
        issued = now or datetime.now(UTC)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "scope": " ".join(scopes),
            **claims,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(payload, self.private_key, algorithm=self.algorithm, headers=headers)


def key_source(settings: Settings) -> KeySource:
    """The key source the settings choose: JWKS URL, then public key, then the dev key."""
    if settings.auth_jwks_url:
        return JwksKeys(settings.auth_jwks_url, cache_seconds=settings.auth_jwks_cache_seconds)
    if settings.auth_public_key is not None:
        return StaticKey(load_public_key(settings.auth_public_key.get_secret_value()))
    return DevKeyPair(settings.auth_dev_key_file)


def token_verifier(settings: Settings) -> TokenVerifier:
    """The verifier of ``keel serve``: keys, issuer, audience, algorithms and skew from settings."""
    keys = key_source(settings)
    algorithms = settings.algorithms
    if isinstance(keys, DevKeyPair):
        logger.warning(
            "tokens are checked with the development key (neither AUTH_JWKS_URL nor "
            "AUTH_PUBLIC_KEY is set); fine on a laptop, never in production",
            extra={"path": str(keys.path)},
        )
        if DEV_ALGORITHM not in algorithms:
            algorithms = (*algorithms, DEV_ALGORITHM)
    return TokenVerifier(
        keys,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=algorithms,
        leeway=settings.auth_leeway_seconds,
        # A key taken out of a JWKS stays trusted while the key cache keeps it;
        # a remembered token must not outlive that.
        cache_seconds=min(settings.auth_verified_cache_seconds, settings.auth_jwks_cache_seconds),
    )


def token_issuer(settings: Settings) -> TokenIssuer:
    """The development issuer; refused when the service trusts someone else's keys."""
    if settings.auth_jwks_url or settings.auth_public_key is not None:
        configured = "AUTH_JWKS_URL" if settings.auth_jwks_url else "AUTH_PUBLIC_KEY"
        raise AuthConfigurationError(
            f"{configured} is set, so tokens come from your identity provider: this service "
            "holds no private key to sign one with (unset it to use the development key)"
        )
    keys = DevKeyPair(settings.auth_dev_key_file)
    return TokenIssuer(
        keys.private_key(), issuer=settings.auth_issuer, audience=settings.auth_audience
    )
