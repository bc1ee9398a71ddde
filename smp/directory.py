"""Peppol Directory indexer client (discovery.md 5): tell the Directory to (re)read or drop a participant.

The Directory does not receive the card itself: after a PUT it resolves the participant via the SML,
reads our ServiceGroup and `/businesscard/{participant}` and indexes that. So the gateway calls
`publish` whenever a participant's registration or organisation data changes, and `delete` on
off-boarding (before the SML delete). Mutual TLS with our Peppol SMP certificate. The Directory's URL goes
through the egress policy like every other URL the gateway fetches (base.egress).
"""

from __future__ import annotations

from urllib.parse import quote

import requests

from base.egress import EgressPolicy, EgressRefused
from base.egress_http import egress_session
from smp.identifiers import ParticipantId

INDEXER_PATH = "/indexer/1.0/"


class DirectoryError(Exception):
    """The Directory did not accept a notification; `message` tells the admin what to do."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


class DirectoryClient:
    """base_url: e.g. https://test-directory.peppol.eu; client_cert: (certificate PEM path, key PEM path)."""

    def __init__(self, base_url: str, *, egress: EgressPolicy, client_cert: tuple[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_cert = client_cert
        self.timeout = timeout
        self.session = egress_session(egress)

    def publish(self, participant: ParticipantId) -> None:
        """Ask the Directory to (re)index `participant` (PUT; body = the participant URI, not encoded)."""
        self._call("PUT", self.base_url + INDEXER_PATH, participant, data=participant.uri.encode("utf-8"),
                   headers={"Content-Type": "text/plain; charset=UTF-8"})

    def delete(self, participant: ParticipantId) -> None:
        """Ask the Directory to drop `participant`. A participant it does not know counts as deleted."""
        url = self.base_url + INDEXER_PATH + quote(participant.uri, safe="")
        self._call("DELETE", url, participant, accept_404=True)

    def _call(self, method: str, url: str, participant: ParticipantId, *, accept_404: bool = False,
              **kwargs: object) -> None:
        what = "publish" if method == "PUT" else "delete"
        try:
            response = self.session.request(method, url, cert=self.client_cert, timeout=self.timeout,
                                            allow_redirects=False, **kwargs)  # type: ignore[arg-type]
        except EgressRefused as exc:
            raise DirectoryError(f"The Peppol Directory URL {self.base_url} is not contacted: {exc.reason}; "
                                 "check directory.url.") from None
        except requests.exceptions.SSLError as exc:
            raise DirectoryError(
                f"TLS with the Peppol Directory at {self.base_url} failed ({exc}); check that our Peppol SMP "
                "certificate is configured as client certificate and that the Directory's certificate is trusted.",
                retryable=True) from None
        except requests.RequestException as exc:
            raise DirectoryError(f"The Peppol Directory at {self.base_url} could not be reached ({exc}); "
                                 f"the {what} of {participant.uri} will have to be retried.", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300 or (accept_404 and status == 404):
            return
        if status == 400:
            raise DirectoryError(f"The Peppol Directory could not parse the participant identifier {participant.uri} "
                                 f"({response.text[:200].strip()}).", status=status)
        if status in (401, 403):
            raise DirectoryError(
                f"The Peppol Directory refused our client certificate (HTTP {status}) for the {what} of "
                f"{participant.uri}: it accepts only Peppol SMP certificates of its network (test or production). "
                "Configure our SMP certificate as the Directory client certificate.", status=status)
        if status >= 500:
            raise DirectoryError(f"The Peppol Directory failed (HTTP {status}) on the {what} of {participant.uri}; "
                                 "it will have to be retried.", status=status, retryable=True)
        raise DirectoryError(f"The Peppol Directory answered HTTP {status} to the {what} of {participant.uri}; "
                             f"check the Directory URL {self.base_url}.", status=status)
