"""The HTTP side of revocation checking: fetch a CRL or ask an OCSP responder, with a size cap.

Kept apart from `certs.revocation` so that the rules there (and the AS4 core that judges certificates with them)
import no HTTP client; the composition root passes `http_fetch` to `RevocationChecker`.
"""

from __future__ import annotations

import requests

from base.bounded import TooLarge, read_bounded
from certs.revocation import MAX_RESPONSE_BYTES, RevocationFetchError


def http_fetch(url: str, body: bytes | None, content_type: str | None, timeout: float) -> bytes:
    """GET (body None) or POST with requests; at most MAX_RESPONSE_BYTES.

    Raises RevocationFetchError with a short reason (the caller names the URL).
    """
    if not url.lower().startswith(("http://", "https://")):
        raise RevocationFetchError("only http(s) revocation URLs are supported")
    try:
        if body is None:
            response = requests.get(url, timeout=timeout, stream=True)
        else:
            headers = {"Content-Type": content_type or "application/octet-stream"}
            response = requests.post(url, data=body, headers=headers, timeout=timeout, stream=True)
        with response:
            if response.status_code != 200:
                raise RevocationFetchError(f"HTTP {response.status_code}")
            try:
                return read_bounded(response.iter_content(65536), MAX_RESPONSE_BYTES)
            except TooLarge:
                raise RevocationFetchError(f"response larger than {MAX_RESPONSE_BYTES} bytes") from None
    except requests.Timeout:
        raise RevocationFetchError(f"no answer within {timeout:g} s") from None
    except requests.ConnectionError as exc:
        raise RevocationFetchError(f"cannot connect ({_root_cause(exc)})") from None
    except requests.RequestException as exc:
        raise RevocationFetchError(f"{type(exc).__name__}: {exc}") from None


_PLAIN_CAUSES = {
    "gaierror": "host name does not resolve",
    "ConnectionRefusedError": "connection refused",
    "ConnectionResetError": "connection reset",
}


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's name: "ConnectionRefusedError", "NameResolutionError", ... not urllib3's essay."""
    seen: list[BaseException] = [exc]
    while True:
        current = seen[-1]
        nested = current.__cause__ or current.__context__
        if nested is None and current.args and isinstance(current.args[0], BaseException):
            nested = current.args[0]
        if nested is None and getattr(current, "reason", None) is not None:
            nested = current.reason  # type: ignore[attr-defined]
        if not isinstance(nested, BaseException) or nested in seen:
            name = type(current).__name__
            return _PLAIN_CAUSES.get(name, name)
        seen.append(nested)
