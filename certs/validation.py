"""Is this certificate a valid Peppol AP (or SMP) certificate of our environment, at a given time?

Modelled on ph-commons' CertificateHelper/TrustedCAChecker as phase4 uses it (operations.md 1.4):
the issuing CA of the certificate's role is the trust anchor, so the leaf must be signed directly
by one of the environment's AP CAs (resp. SMP CAs). The answer is a Verdict with a reason, never a
bare boolean.

Check order: issuer, signature, validity of the issuing CA, validity of the leaf, key usage (and, for AP
certificates, the extended key usage), key strength, subject, revocation. phase4 checks the validity window before
the issuer; we check the issuer first so that a certificate from an untrusted or retired CA (e.g. an expired G2
leaf) is reported as `unsupported-issuer`, which is what the reference vectors expect and what an operator needs to
hear: no renewal date will fix it.

A damaged certificate (cryptography parses names and extensions lazily) gets a Verdict too, never an exception:
the step that cannot read the field it needs fails with its own reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.anchors import TrustAnchors
from certs.names import common_name as _cn
from certs.names import common_names
from certs.revocation import RevocationChecker, RevocationResult
from certs.untrusted import MALFORMED

# phax/peppol-commons PeppolIdentifierHelper.REGEX_SEAT_ID
SEAT_ID = re.compile(r"P[A-Z]{2}[0-9]{6}")

EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
UNSUPPORTED_ISSUER = "unsupported-issuer"
BAD_SIGNATURE = "bad-signature"
BAD_KEY_USAGE = "bad-key-usage"
WEAK_KEY = "weak-key"
BAD_SUBJECT = "bad-subject"
REVOKED = "revoked"
REVOCATION_UNKNOWN = "revocation-unknown"
NO_CERTIFICATE = "no-certificate"

# The Peppol G3 certificate policy (as4.md section 3): RSA keys of at least 2048 bits; EC keys of at least 256 bits
# are the usual equivalent. Anything smaller can be forged by factoring or is on its way there.
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
# An AP certificate serves TLS as well as AS4: its EKU, when it has one, names a TLS role (G3: clientAuth).
AP_EXTENDED_KEY_USAGES = frozenset({ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH})
# RFC 5280 names of the usages a refusal may have to list (others are shown as their OID)
_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}

class Purpose(StrEnum):
    AP_SIGNING = "ap-signing"
    AP_ENCRYPTION = "ap-encryption"
    SMP_SIGNING = "smp-signing"

    @property
    def role(self) -> str:
        return "SMP" if self is Purpose.SMP_SIGNING else "AP"


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str | None
    detail: str
    subject: str
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    revocation: RevocationResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "detail": self.detail,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "revocation": self.revocation.to_dict() if self.revocation else None,
        }


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


class CertificateValidator:
    """Validates leaf certificates against the anchors of one environment, optionally with revocation."""

    def __init__(self, anchors: TrustAnchors, revocation: RevocationChecker | None = None) -> None:
        self.anchors = anchors
        self.revocation = revocation

    def validate(self, cert: x509.Certificate | None, purpose: Purpose, at: datetime | None = None) -> Verdict:
        purpose = Purpose(purpose)
        if cert is None:
            return Verdict(False, NO_CERTIFICATE, f"no certificate was provided for {purpose.value}", "", "",
                           None, None)
        now = at or datetime.now(UTC)
        if now.tzinfo is None:
            raise ValueError("validation time must be timezone-aware (UTC)")
        subject, issuer = _name_text(lambda: cert.subject), _name_text(lambda: cert.issuer)

        def verdict(reason: str | None, detail: str, revocation: RevocationResult | None = None) -> Verdict:
            return Verdict(reason is None, reason, detail, subject, issuer, cert.not_valid_before_utc,
                           cert.not_valid_after_utc, revocation)

        cas = self.anchors.smp_cas if purpose is Purpose.SMP_SIGNING else self.anchors.ap_cas
        others = self.anchors.ap_cas if purpose is Purpose.SMP_SIGNING else self.anchors.smp_cas
        env = self.anchors.environment
        try:
            issuer_name = cert.issuer
        except MALFORMED as exc:
            # A damaged certificate (any field the CA signed) fails the signature check below; this one fails
            # earlier because the issuer cannot even be compared. unsupported-issuer rather than a reason of its
            # own: it is the issuer check that fails (an unreadable name is no CA of ours), the operator's remedy
            # is the same (no renewal date will make this certificate acceptable), and every reader of the
            # reason (smp.client, the CLI, inspect's JSON) already knows it.
            return verdict(UNSUPPORTED_ISSUER, f"the issuer name cannot be read ({exc}), so it names no trusted "
                           f"{purpose.role} CA of the {env} environment: the certificate is damaged")
        named = [ca for ca in cas if ca.subject == issuer_name]
        if not named:
            if any(ca.subject == issuer_name for ca in others):
                other_role = "AP" if purpose is Purpose.SMP_SIGNING else "SMP"
                return verdict(UNSUPPORTED_ISSUER, f"issued by the {other_role} CA {_cn(issuer_name)!r}, which may "
                               f"not issue certificates for {purpose.value}; only the {purpose.role} CA may")
            trusted = ", ".join(repr(_cn(ca.subject)) for ca in cas) or "none configured"
            return verdict(UNSUPPORTED_ISSUER, f"issuer {_cn(issuer_name)!r} is not a trusted {purpose.role} CA of "
                           f"the {env} environment (trusted: {trusted})")
        ca = next((c for c in named if _issued_by(cert, c)), None)
        if ca is None:
            return verdict(BAD_SIGNATURE, f"the certificate names {_cn(issuer_name)!r} as issuer, but its signature "
                           "does not verify with that CA's key (forged or damaged certificate)")
        if now > ca.not_valid_after_utc:
            return verdict(EXPIRED, f"the issuing CA {_cn(ca.subject)!r} expired on {_when(ca.not_valid_after_utc)}")
        if now < ca.not_valid_before_utc:
            return verdict(NOT_YET_VALID, f"the issuing CA {_cn(ca.subject)!r} is not valid before "
                           f"{_when(ca.not_valid_before_utc)}")
        if now > cert.not_valid_after_utc:
            return verdict(EXPIRED, f"the certificate expired on {_when(cert.not_valid_after_utc)} "
                           f"(checked at {_when(now)})")
        if now < cert.not_valid_before_utc:
            return verdict(NOT_YET_VALID, f"the certificate is not valid before {_when(cert.not_valid_before_utc)} "
                           f"(checked at {_when(now)})")
        usage_problem = _key_usage_problem(cert, purpose)
        if usage_problem:
            return verdict(BAD_KEY_USAGE, usage_problem)
        strength_problem = _key_strength_problem(cert)
        if strength_problem:
            return verdict(WEAK_KEY, strength_problem)
        try:
            cns = common_names(cert.subject)
        except MALFORMED as exc:
            # Only reachable for a certificate the CA really signed that cryptography cannot parse; also for SMP
            # certificates, whose subject the revocation check and every report name.
            return verdict(BAD_SUBJECT, f"the subject name cannot be read ({exc})")
        if purpose is not Purpose.SMP_SIGNING:
            # The CN is the AS4 PartyId; with several CNs "the" seat ID would be ambiguous.
            if len(cns) != 1:
                return verdict(BAD_SUBJECT, f"the subject has {len(cns)} CNs; an AP certificate has exactly one, "
                               "its seat ID")
            if not SEAT_ID.fullmatch(cns[0]):
                return verdict(BAD_SUBJECT, f"the subject CN {cns[0]!r} is not a Peppol seat ID "
                               "(P + 2 letters + 6 digits, e.g. POP000001)")
        base = f"valid {purpose.value} certificate of the {env} environment, issued by {_cn(ca.subject)!r}"
        if self.revocation is None:
            return verdict(None, f"{base}; revocation NOT checked (disabled)")
        result = self.revocation.check(cert, ca, now)
        if result.status == "revoked":
            return verdict(REVOKED, f"the certificate is {result.detail}", result)
        if result.status == "unknown":
            return verdict(REVOCATION_UNKNOWN, result.detail, result)
        return verdict(None, f"{base}; not revoked ({result.source}: {result.detail})", result)


def _name_text(read: Callable[[], x509.Name]) -> str:
    """The RFC 4514 form of a name for the Verdict, or a placeholder when the certificate's name is damaged."""
    try:
        return read().rfc4514_string()
    except MALFORMED:
        return "(unreadable)"


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_usage_problem(cert: x509.Certificate, purpose: Purpose) -> str | None:
    try:
        extensions = cert.extensions
    except MALFORMED as exc:
        return f"the extensions cannot be read ({exc}), so the key usage is unknown"
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "the certificate is a CA certificate, not an end-entity certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "the certificate has no KeyUsage extension (Peppol certificates always carry one)"
    if purpose is Purpose.SMP_SIGNING:
        if not usage.digital_signature:
            return f"the key usage lacks digitalSignature, so the key may not sign ({purpose.value})"
        return None
    # One AP certificate both signs (AS4, receipts) and receives keys (AS4 encryption), whichever purpose it is
    # checked for now, so both usages are required of it (G3: digitalSignature, keyEncipherment, dataEncipherment).
    missing = [name for name, present in (("digitalSignature", usage.digital_signature),
                                          ("keyEncipherment", usage.key_encipherment)) if not present]
    if missing:
        return (f"the key usage lacks {' and '.join(missing)}; a Peppol AP certificate must allow digitalSignature "
                f"and keyEncipherment ({purpose.value})")
    try:
        extended = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None  # no EKU extension: the key usage alone governs, as RFC 5280 has it
    if not AP_EXTENDED_KEY_USAGES.intersection(extended):
        named = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in extended) or "nothing"
        return (f"the extended key usage allows only {named}; a Peppol AP certificate must allow clientAuth "
                "(or serverAuth)")
    return None


def _key_strength_problem(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"the public key cannot be read ({exc})"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.key_size < MIN_EC_BITS:
            return f"the EC key ({key.curve.name}) has {key.key_size} bits; at least {MIN_EC_BITS} are required"
        return None
    return (f"the key is {type(key).__name__.removeprefix('_')}; Peppol certificates carry RSA (at least "
            f"{MIN_RSA_BITS} bits) or EC (at least {MIN_EC_BITS} bits) keys")
