"""Revocation status of a certificate by CRL and OCSP, with caching and an opt-in soft fail.

Follows the behaviour of ph-commons' CertificateRevocationChecker as phase4 uses it
(operations.md 1.4): default order CRL then OCSP, results cached per certificate for up to 6 h,
CRLs cached until their nextUpdate and at most 24 h, hard fail when no method gives an answer.
The only I/O is the `fetch` callable the caller passes (`certs.fetch.http_fetcher(policy)` in production), so every rule
here is testable without a network, and code that only judges certificates imports no HTTP client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

log = logging.getLogger(__name__)

Status = Literal["good", "revoked", "unknown"]
Source = Literal["crl", "ocsp", "cache", "stale-cache"]
Method = Literal["crl", "ocsp"]
Fetch = Callable[[str, bytes | None, str | None, float], bytes]

MAX_CRL_CACHE = timedelta(hours=24)
# Java's PKIX revocation checker (used by phase4) tolerates 15 minutes of clock skew on thisUpdate.
CLOCK_SKEW = timedelta(minutes=15)
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_CACHED_RESULTS = 50_000
SLOW_CHECK_SECONDS = 0.5  # phase4 logs revocation checks slower than 500 ms


class RevocationFetchError(Exception):
    """A CRL or OCSP server could not be reached or answered badly (transport level)."""


class _NoAnswer(Exception):
    """One method could not give a usable answer; the message says why."""


@dataclass(frozen=True)
class RevocationResult:
    status: Status
    source: Source | None
    detail: str
    checked_at: datetime
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "status": self.status,
            "source": self.source,
            "detail": self.detail,
            "checked_at": iso(self.checked_at),
            "this_update": iso(self.this_update),
            "next_update": iso(self.next_update),
            "revoked_at": iso(self.revoked_at),
        }


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _uris(names: Iterable[x509.GeneralName] | None) -> list[str]:
    return [n.value for n in names or () if isinstance(n, x509.UniformResourceIdentifier)]


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [uri for point in points for uri in _uris(point.full_name)]


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def _verify_signature(public_key: object, signature: bytes, data: bytes,
                      algorithm: hashes.HashAlgorithm | None) -> None:
    if algorithm is None:
        raise _NoAnswer("the OCSP response uses a signature algorithm without a hash")
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise _NoAnswer("the OCSP responder key type is not supported")


@dataclass
class _CachedCrl:
    crl: x509.CertificateRevocationList
    expires: datetime


class RevocationChecker:
    """Asks CRL and/or OCSP whether a certificate is revoked, in a configurable order.

    Thread-safe. `stats` counts what happened (for metrics). With soft_fail, when no method gives
    an answer, the last definite answer for that certificate is reused for up to grace_seconds and
    the use is logged as a WARNING and counted in stats["soft_fail_used"].
    """

    def __init__(
        self,
        fetch: Fetch,
        order: Sequence[Method] = ("crl", "ocsp"),
        cache_seconds: float = 6 * 3600,
        soft_fail: bool = False,
        grace_seconds: float = 24 * 3600,
        timeout: float = 10.0,
    ) -> None:
        if not order or any(m not in ("crl", "ocsp") for m in order) or len(set(order)) != len(order):
            raise ValueError(f"order must list 'crl' and/or 'ocsp' once each, got {tuple(order)!r}")
        if not 0 <= cache_seconds <= 6 * 3600:
            raise ValueError(f"cache_seconds must be between 0 and 21600 (6 h), got {cache_seconds}")
        self.fetch = fetch
        self.order = tuple(order)
        self.cache_age = timedelta(seconds=cache_seconds)
        self.soft_fail = soft_fail
        self.grace = timedelta(seconds=grace_seconds)
        self.timeout = timeout
        self.stats: dict[str, int] = dict.fromkeys(
            ("checks", "cache_hit", "crl_fetch", "crl_cache_hit", "ocsp_fetch", "good", "revoked", "unknown",
             "soft_fail_used", "errors"),
            0,
        )
        self._lock = threading.Lock()
        self._results: dict[tuple[bytes, int], RevocationResult] = {}
        self._crls: dict[tuple[str, bytes], _CachedCrl] = {}

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] = self.stats.get(name, 0) + 1

    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime | None = None) -> RevocationResult:
        """Status of cert (issued by issuer) at `at` (default now). Never raises for network or data problems."""
        now = at or datetime.now(UTC)
        key = (_fingerprint(issuer), cert.serial_number)
        self._count("checks")
        with self._lock:
            last = self._results.get(key)
        if last is not None and self._fresh(last, now):
            self._count("cache_hit")
            return replace(last, source="cache")
        started = time.monotonic()
        problems: list[str] = []
        for method in self.order:
            try:
                result = self._crl(cert, issuer, now) if method == "crl" else self._ocsp(cert, issuer, now)
            except _NoAnswer as exc:
                problems.append(f"{method.upper()}: {exc}")
                continue
            self._remember(key, result, now)
            self._count(result.status)
            self._log_slow(cert, started)
            return result
        self._log_slow(cert, started)
        self._count("errors")
        reasons = "; ".join(problems)
        if self.soft_fail and last is not None and timedelta(0) <= now - last.checked_at <= self.grace:
            self._count("soft_fail_used")
            age = now - last.checked_at
            log.warning(
                "revocation status unavailable, soft fail: reusing the last answer",
                extra={"event": "revocation_soft_fail", "subject": cert.subject.rfc4514_string(),
                       "serial": format(cert.serial_number, "x"), "status": last.status,
                       "answer_age_seconds": int(age.total_seconds()), "problems": reasons},
            )
            return replace(
                last,
                source="stale-cache",
                detail=f"SOFT FAIL: no current revocation answer ({reasons}); reusing the {last.status!r} answer "
                f"from {last.checked_at:%Y-%m-%d %H:%M:%S} UTC ({int(age.total_seconds() // 60)} min old)",
            )
        self._count("unknown")
        return RevocationResult(
            status="unknown", source=None, checked_at=now,
            detail=f"revocation status could not be determined: {reasons}",
        )

    def _remember(self, key: tuple[bytes, int], result: RevocationResult, now: datetime) -> None:
        keep = max(self.cache_age, self.grace if self.soft_fail else self.cache_age)
        with self._lock:
            self._results[key] = result
            if len(self._results) > MAX_CACHED_RESULTS:
                # Bounded memory: forget answers too old to be used even by soft fail.
                for old in [k for k, r in self._results.items() if now - r.checked_at > keep]:
                    del self._results[old]
            if len(self._results) > MAX_CACHED_RESULTS:
                for old in sorted(self._results, key=lambda k: self._results[k].checked_at)[:MAX_CACHED_RESULTS // 2]:
                    del self._results[old]
            for url_key in [k for k, c in self._crls.items() if c.expires <= now]:
                del self._crls[url_key]

    def _fresh(self, result: RevocationResult, now: datetime) -> bool:
        if not timedelta(0) <= now - result.checked_at <= self.cache_age:
            return False
        return result.next_update is None or now <= result.next_update

    def _log_slow(self, cert: x509.Certificate, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > SLOW_CHECK_SECONDS:
            log.info("slow revocation check", extra={"event": "revocation_slow", "seconds": round(elapsed, 3),
                                                     "subject": cert.subject.rfc4514_string()})

    # -- CRL -----------------------------------------------------------------------------------

    def _crl(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> RevocationResult:
        urls = crl_urls(cert)
        if not urls:
            raise _NoAnswer("the certificate has no CRL distribution point")
        problems = []
        for url in urls:
            try:
                crl = self._load_crl(url, issuer, now)
            except _NoAnswer as exc:
                problems.append(f"{url}: {exc}")
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            window = {"this_update": crl.last_update_utc, "next_update": crl.next_update_utc, "checked_at": now}
            # As Java's PKIX checker does: a revocation dated after the validation time does not count.
            if entry is not None and entry.revocation_date_utc <= now:
                return RevocationResult(
                    status="revoked", source="crl", revoked_at=entry.revocation_date_utc, **window,
                    detail=f"revoked on {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S} UTC{_crl_reason(entry)} "
                    f"according to the CRL at {url}",
                )
            return RevocationResult(status="good", source="crl", detail=f"not on the CRL at {url}", **window)
        raise _NoAnswer("; ".join(problems))

    def _load_crl(self, url: str, issuer: x509.Certificate, now: datetime) -> x509.CertificateRevocationList:
        key = (url, _fingerprint(issuer))
        with self._lock:
            cached = self._crls.get(key)
        if cached is not None and cached.crl.last_update_utc - CLOCK_SKEW <= now < cached.expires:
            self._count("crl_cache_hit")
            return cached.crl
        self._count("crl_fetch")
        try:
            data = self.fetch(url, None, None, self.timeout)
        except RevocationFetchError as exc:
            raise _NoAnswer(f"download failed: {exc}") from None
        try:
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN")
                   else x509.load_der_x509_crl(data))
        except ValueError:
            raise _NoAnswer(f"not a CRL ({len(data)} bytes that do not parse as DER or PEM)") from None
        if crl.issuer != issuer.subject:
            raise _NoAnswer(f"CRL issuer {crl.issuer.rfc4514_string()} is not {issuer.subject.rfc4514_string()}")
        try:
            signature_ok = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, UnsupportedAlgorithm):
            signature_ok = False
        if not signature_ok:
            raise _NoAnswer("the CRL signature does not verify with the issuing CA's key")
        if crl.last_update_utc - CLOCK_SKEW > now:
            raise _NoAnswer(f"the CRL's thisUpdate {crl.last_update_utc:%Y-%m-%d %H:%M:%S} UTC is in the future")
        if crl.next_update_utc is None:
            raise _NoAnswer("the CRL has no nextUpdate, so its freshness cannot be judged")
        if now > crl.next_update_utc:
            raise _NoAnswer(f"the CRL is stale (nextUpdate {crl.next_update_utc:%Y-%m-%d %H:%M:%S} UTC has passed)")
        expires = min(crl.next_update_utc, now + MAX_CRL_CACHE)
        with self._lock:
            self._crls[key] = _CachedCrl(crl, expires)
        return crl

    # -- OCSP ----------------------------------------------------------------------------------

    def _ocsp(self, cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> RevocationResult:
        urls = ocsp_urls(cert)
        if not urls:
            raise _NoAnswer("the certificate has no OCSP responder (AIA)")
        # SHA-1 CertID: what Java's OCSP client (phase4) sends and every responder understands.
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
        body = request.public_bytes(serialization.Encoding.DER)
        problems = []
        for url in urls:
            self._count("ocsp_fetch")
            try:
                data = self.fetch(url, body, "application/ocsp-request", self.timeout)
                return self._read_ocsp(data, request, cert, issuer, now, url)
            except RevocationFetchError as exc:
                problems.append(f"{url}: request failed: {exc}")
            except _NoAnswer as exc:
                problems.append(f"{url}: {exc}")
        raise _NoAnswer("; ".join(problems))

    def _read_ocsp(self, data: bytes, request: ocsp.OCSPRequest, cert: x509.Certificate,
                   issuer: x509.Certificate, now: datetime, url: str) -> RevocationResult:
        try:
            response = ocsp.load_der_ocsp_response(data)
        except ValueError:
            raise _NoAnswer(f"not an OCSP response ({len(data)} bytes that do not parse)") from None
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _NoAnswer(f"the responder answered {response.response_status.name}")
        signer = self._ocsp_signer(response, issuer, now)
        try:
            _verify_signature(signer.public_key(), response.signature, response.tbs_response_bytes,
                              response.signature_hash_algorithm)
        except InvalidSignature:
            raise _NoAnswer("the OCSP response signature does not verify") from None
        single = next((r for r in response.responses
                       if r.serial_number == cert.serial_number
                       and r.issuer_key_hash == request.issuer_key_hash
                       and r.issuer_name_hash == request.issuer_name_hash), None)
        if single is None:
            raise _NoAnswer("the OCSP response holds no status for this certificate (CertID mismatch)")
        if single.this_update_utc - CLOCK_SKEW > now:
            raise _NoAnswer(f"the OCSP thisUpdate {single.this_update_utc:%Y-%m-%d %H:%M:%S} UTC is in the future")
        if single.next_update_utc is not None and now > single.next_update_utc:
            raise _NoAnswer(
                f"the OCSP response is stale (nextUpdate {single.next_update_utc:%Y-%m-%d %H:%M:%S} UTC has passed)"
            )
        window = {"this_update": single.this_update_utc, "next_update": single.next_update_utc, "checked_at": now}
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.UNKNOWN:
            raise _NoAnswer("the OCSP responder does not know this certificate (status unknown)")
        if status == ocsp.OCSPCertStatus.REVOKED:
            revoked_at = single.revocation_time_utc
            # As Java's PKIX checker does: a revocation dated after the validation time does not count.
            if revoked_at is not None and revoked_at <= now:
                reason = f" (reason: {single.revocation_reason.name})" if single.revocation_reason else ""
                return RevocationResult(status="revoked", source="ocsp", revoked_at=revoked_at, **window,
                                        detail=f"revoked on {revoked_at:%Y-%m-%d %H:%M:%S} UTC{reason} "
                                        f"according to the OCSP responder at {url}")
        return RevocationResult(status="good", source="ocsp", **window,
                                detail=f"good according to the OCSP responder at {url}")

    def _ocsp_signer(self, response: ocsp.OCSPResponse, issuer: x509.Certificate,
                     now: datetime) -> x509.Certificate:
        """The issuer itself, or a delegated responder certificate it issued for OCSP signing (RFC 6960 4.2.2.2)."""
        if self._responder_is(response, issuer):
            return issuer
        for candidate in response.certificates:
            if not self._responder_is(response, candidate):
                continue
            try:
                candidate.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                raise _NoAnswer("the OCSP responder certificate is not issued by the certificate's CA") from None
            try:
                eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                eku = x509.ExtendedKeyUsage([])
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                raise _NoAnswer("the OCSP responder certificate lacks the OCSP-signing extended key usage")
            if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
                raise _NoAnswer("the OCSP responder certificate is outside its validity period")
            return candidate
        raise _NoAnswer("the OCSP response is signed by neither the CA nor a responder certificate it includes")

    @staticmethod
    def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
        if response.responder_name is not None:
            return response.responder_name == cert.subject
        # ResponderID byKey is the SHA-1 of the subjectPublicKey BIT STRING: the same value as SKI method 1.
        digest = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # type: ignore[arg-type]
        return response.responder_key_hash == digest


def _crl_reason(entry: x509.RevokedCertificate) -> str:
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return ""
    return f" (reason: {reason.name})"
