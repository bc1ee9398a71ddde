"""API bearer tokens: `pap_` + 32 random bytes (URL-safe base64); only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "pap_"
DISPLAY_LENGTH = 8


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 hex of the token. A plain hash suffices: the token has 256 random bits, nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    """The first characters, shown in lists so an admin can tell tokens apart without seeing them."""
    return token[:DISPLAY_LENGTH]
