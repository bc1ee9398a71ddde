"""Discovery failures, classified by what the sender must do next.

The class decides between "fail the message now" and "retry later", so each one is chosen with care:

- ParticipantNotRegistered: the SML has no record (NXDOMAIN / no NAPTR). Definitive.
- NotSupported: the participant exists but not for this document type or process (SMP 404, or no
  endpoint matching process + transport profile + dates). Definitive until the receiver changes its SMP.
- DiscoveryUnavailable: DNS time-out or SERVFAIL, SMP 5xx or other unexpected status, connection
  errors, revocation status unknown. Retryable.
- DiscoveryUntrusted: bad signature, untrusted/expired/revoked certificate, identifier echo mismatch,
  redirect mismatch, malformed answer. Not retryable: someone must look at it.
"""

from __future__ import annotations


class DiscoveryError(Exception):
    """Base class: `kind` is a stable word for logs/metrics, `hint` tells a person what to do."""

    kind = "discovery-error"
    retryable = False
    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        # Steps of the lookup done before the failure (filled in by smp.client.Discovery), for people.
        self.steps: tuple[object, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "retryable": self.retryable, "message": self.message, "hint": self.hint}


class ParticipantNotRegistered(DiscoveryError):
    kind = "participant-not-registered"
    default_hint = "Check the participant identifier with the receiver; they must be registered in the Peppol SML."


class NotSupported(DiscoveryError):
    kind = "not-supported"
    default_hint = (
        "The receiver does not accept this document type/process over Peppol AS4 right now; "
        "ask them which document types they have registered in their SMP."
    )


class DiscoveryUnavailable(DiscoveryError):
    kind = "discovery-unavailable"
    retryable = True
    default_hint = "A DNS, SMP or revocation server could not be reached or failed; the lookup will be retried."


class DiscoveryUntrusted(DiscoveryError):
    kind = "discovery-untrusted"
    default_hint = (
        "The SMP answer could not be trusted (signature, certificate or identifiers); "
        "do not send, and contact the receiver's service provider."
    )
