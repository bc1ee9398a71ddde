"""SMP client and the complete discovery of a receiver's AS4 endpoint.

`SmpClient` fetches ServiceGroup / SignedServiceMetadata over HTTP(S) with requests (no HTTP
redirects, connect/read time-outs, a byte cap and an overall deadline per request, and only to
addresses the egress policy allows: the SML's answer and a Redirect href are someone else's
choice, so an SMP URL on loopback or a private network gets no request outside `egress.allow`
and the local environment), verifies the
signature over the bytes received, validates the signer certificate (SMP_SIGNING), checks that
the answer is about what was asked, and follows at most one SMP `Redirect`, whose target must be
signed by the certificate named in `CertificateUID` (compared with the certificate that actually
verified the target's signature, never with unsigned KeyInfo text).

`Discovery` chains SML lookup -> SMP -> endpoint choice -> AP certificate validation
(AP_ENCRYPTION) and caches the outcome. Every failure is one of the classes in smp.errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import requests
from cryptography import x509

from base.bounded import TooLarge, TooSlow, connection_reason, read_bounded
from base.egress import EgressPolicy, EgressRefused
from base.egress_http import egress_session
from base.safexml import XmlError
from certs.validation import REVOCATION_UNKNOWN, Purpose
from smp.cache import DiscoveryCache
from smp.errors import (
    DiscoveryError,
    DiscoveryUnavailable,
    DiscoveryUntrusted,
    NotSupported,
    ParticipantNotRegistered,
)
from smp.lookup import Participant, SmlLookup
from smp.servicemetadata import (
    AS4_V2,
    Endpoint,
    Identifier,
    ServiceGroup,
    ServiceMetadata,
    ServiceMetadataError,
    SignatureCheck,
    describe_endpoints,
    echo_problems,
    parse_service_group,
    parse_service_metadata,
    same_participant,
    select_endpoint,
    subject_matches,
    verify_signature,
)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
NEGATIVE_ERRORS: tuple[type[DiscoveryError], ...] = (ParticipantNotRegistered, NotSupported)


def _certificate_error(verdict: Any, role: str, subject: str | None, context: str) -> DiscoveryError:
    # A certificate whose revocation status cannot be learnt is a temporary condition (the CRL/OCSP
    # server is down), not proof of forgery: retry later instead of failing the message.
    if verdict.reason == REVOCATION_UNKNOWN:
        return DiscoveryUnavailable(
            f"{context}: the revocation status of the {role} certificate {subject} cannot be learnt right now "
            f"({verdict.detail})"
        )
    return DiscoveryUntrusted(f"{context}: the {role} certificate {subject} is not trusted "
                              f"({verdict.reason}: {verdict.detail})")


class CertificateValidator(Protocol):
    """certs.validation.CertificateValidator (with the environment's anchors and a revocation checker)."""

    def validate(self, cert: x509.Certificate, purpose: Purpose, at: datetime | None = None) -> Any: ...


@dataclass(frozen=True)
class Step:
    """One stage of a lookup, for people (CLI) and logs."""

    stage: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "ok": self.ok, "detail": self.detail, **({"data": self.data} if self.data else {})}


@dataclass(frozen=True)
class VerifiedMetadata:
    url: str
    metadata: ServiceMetadata
    signature: SignatureCheck
    certificate_verdict: Any
    redirected_from: str | None = None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class EndpointResult:
    smp_uri: str
    endpoint_url: str
    certificate: x509.Certificate
    certificate_verdict: Any
    transport_profile: str
    endpoint: Endpoint
    metadata: VerifiedMetadata
    steps: tuple[Step, ...] = ()

    @property
    def certificate_subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def _shown(identifier: Identifier) -> str:
    return f"{identifier.scheme}::{identifier.value}"


def path_segment(identifier: Identifier) -> str:
    """`scheme::value` percent-encoded as ONE path segment (RFC 3986: everything but unreserved)."""
    return quote(f"{identifier.scheme.strip()}::{identifier.value.strip()}", safe="")


def service_group_url(smp_uri: str, participant: Identifier) -> str:
    return f"{smp_uri.rstrip('/')}/{path_segment(participant)}"


def service_metadata_url(smp_uri: str, participant: Identifier, document_type: Identifier) -> str:
    return f"{service_group_url(smp_uri, participant)}/services/{path_segment(document_type)}"


def redirect_target_url(href: str, participant: Identifier, document_type: Identifier) -> str:
    """The URL to follow for a Redirect: the target SMP's base from the href, our own encoded path.

    The href must name the same participant and document type (decoded once, participant
    case-insensitive); otherwise the redirect is not about what we asked and is refused.
    """
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"redirect href {href!r} is not an http(s) URL")
    decoded = unquote(parts.path)
    marker = f"/{participant.scheme.strip()}::{participant.value.strip()}/services/".lower()
    index = decoded.lower().find(marker)
    if index < 0:
        raise ValueError(f"redirect href {href!r} is not about participant {_shown(participant)}")
    requested = f"{document_type.scheme.strip()}::{document_type.value.strip()}"
    if decoded[index + len(marker):].strip() != requested:
        raise ValueError(f"redirect href {href!r} is not about document type {requested}")
    # Rebuild: keep any base path in front of the participant segment, then encode ourselves.
    prefix = decoded[:index]
    base = f"{parts.scheme}://{parts.netloc}{quote(prefix)}"
    return service_metadata_url(base, participant, document_type)


class SmpClient:
    def __init__(
        self,
        validator: CertificateValidator,
        *,
        egress: EgressPolicy,
        timeout: float | tuple[float, float] = (5.0, 10.0),
        max_bytes: int = DEFAULT_MAX_BYTES,
        allow_sha1: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.validator = validator
        # SMPs are reached over plain http on port 80 (Peppol SMP specification), which TLS would not improve:
        # their answers are signed
        self.session = egress_session(egress, plain_http=True)
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.max_bytes = max_bytes
        self.allow_sha1 = allow_sha1
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- HTTP -------------------------------------------------------------------------------

    def _get(self, url: str, what: str) -> tuple[int, bytes]:
        """(status, body) with the body capped at max_bytes; connection trouble -> DiscoveryUnavailable."""
        deadline = time.monotonic() + self.timeout[0] + self.timeout[1]
        try:
            with self.session.get(
                url,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                headers={"Accept": "text/xml, application/xml"},
            ) as response:
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > self.max_bytes:
                    raise DiscoveryUntrusted(
                        f"{what}: SMP answer from {url} is {length} bytes, more than the {self.max_bytes} accepted"
                    )
                try:
                    return response.status_code, read_bounded(response.iter_content(65536), self.max_bytes,
                                                              deadline=deadline)
                except TooLarge:
                    raise DiscoveryUntrusted(
                        f"{what}: SMP answer from {url} exceeds the {self.max_bytes} bytes accepted") from None
                except TooSlow:
                    raise DiscoveryUnavailable(f"{what}: SMP {url} is too slow sending its answer") from None
        except EgressRefused as exc:
            raise DiscoveryUntrusted(f"{what}: SMP URL {url} is not contacted: {exc.reason}") from None
        except requests.Timeout:
            raise DiscoveryUnavailable(f"{what}: SMP {url} did not answer in time") from None
        except requests.ConnectionError as exc:
            raise DiscoveryUnavailable(f"{what}: cannot connect to SMP {url} ({connection_reason(exc)})") from None
        except requests.RequestException as exc:
            raise DiscoveryUnavailable(f"{what}: request to SMP {url} failed ({exc})") from None

    @staticmethod
    def _unexpected_status(status: int, url: str, what: str) -> DiscoveryError:
        if 300 <= status < 400:
            return DiscoveryUnavailable(f"{what}: SMP {url} answered HTTP {status} (SMPs must not redirect over HTTP)")
        return DiscoveryUnavailable(f"{what}: SMP {url} answered HTTP {status}")

    # -- ServiceGroup -----------------------------------------------------------------------

    def service_group(self, smp_uri: str, participant: Participant) -> ServiceGroup:
        url = service_group_url(smp_uri, participant)
        what = f"service group of {_shown(participant)}"
        status, body = self._get(url, what)
        if status == 404:
            raise ParticipantNotRegistered(
                f"{_shown(participant)} is not known to its SMP ({url} answered 404 although the SML points there)"
            )
        if status != 200:
            raise self._unexpected_status(status, url, what)
        try:
            group = parse_service_group(body)
        except (XmlError, ServiceMetadataError) as exc:
            raise DiscoveryUntrusted(f"{what}: answer from {url} is not a valid ServiceGroup: {exc}") from None
        if not same_participant(group.participant, participant):
            raise DiscoveryUntrusted(
                f"{what}: answer from {url} is about {group.participant.uri}, not {_shown(participant)}"
            )
        return group

    # -- ServiceMetadata --------------------------------------------------------------------

    def _fetch_verified(self, url: str, participant: Participant, document_type: Identifier, at: datetime,
                        steps: list[Step]) -> tuple[ServiceMetadata, SignatureCheck, Any]:
        what = f"service metadata of {_shown(participant)} for {_shown(document_type)}"
        status, body = self._get(url, what)
        if status == 404:
            steps.append(Step("smp", False, f"GET {url}: 404 (document type not registered)"))
            raise NotSupported(
                f"{_shown(participant)} does not support document type {_shown(document_type)} "
                f"(SMP {url} answered 404)"
            )
        if status != 200:
            steps.append(Step("smp", False, f"GET {url}: HTTP {status}"))
            raise self._unexpected_status(status, url, what)
        steps.append(Step("smp", True, f"GET {url}: 200, {len(body)} bytes", {"url": url}))
        check = verify_signature(body, allow_sha1=self.allow_sha1)
        if not check.valid:
            steps.append(Step("signature", False, "; ".join(check.problems), {"signer": check.subject}))
            raise DiscoveryUntrusted(f"{what}: the signature of the SMP answer from {url} is not valid: "
                                     + "; ".join(check.problems))
        assert check.certificate is not None and check.signed_root is not None
        steps.append(Step("signature", True, f"valid ({check.algorithm}), signed by {check.subject}",
                          {"signer": check.subject, "warnings": list(check.warnings)}))
        verdict = self.validator.validate(check.certificate, Purpose.SMP_SIGNING, at)
        steps.append(Step("smp-certificate", bool(verdict.valid), verdict.detail or ("valid" if verdict.valid else ""),
                          {"subject": check.subject, "reason": verdict.reason}))
        if not verdict.valid:
            raise _certificate_error(verdict, "SMP signing", check.subject, what)
        try:
            metadata = parse_service_metadata(check.signed_root)
        except ServiceMetadataError as exc:
            raise DiscoveryUntrusted(f"{what}: signed answer from {url} is not valid ServiceMetadata: {exc}") from None
        return metadata, check, verdict

    def service_metadata(self, smp_uri: str, participant: Participant, document_type: Identifier, *,
                         at: datetime | None = None, steps: list[Step] | None = None) -> VerifiedMetadata:
        at = at or self.clock()
        steps = steps if steps is not None else []
        what = f"service metadata of {_shown(participant)} for {_shown(document_type)}"
        url = service_metadata_url(smp_uri, participant, document_type)
        metadata, check, verdict = self._fetch_verified(url, participant, document_type, at, steps)
        redirected_from: str | None = None
        if metadata.redirect is not None:
            redirect = metadata.redirect
            try:
                target = redirect_target_url(redirect.href, participant, document_type)
            except ValueError as exc:
                raise DiscoveryUntrusted(f"{what}: SMP {url} redirects, but {exc}") from None
            steps.append(Step("redirect", True, f"redirect to {target}, expected signer {redirect.certificate_uid}",
                              {"href": redirect.href, "certificate_uid": redirect.certificate_uid}))
            redirected_from, url = url, target
            metadata, check, verdict = self._fetch_verified(url, participant, document_type, at, steps)
            assert check.certificate is not None
            if not subject_matches(redirect.certificate_uid, check.certificate.subject):
                steps.append(Step("redirect", False, f"target signed by {check.subject}"))
                raise DiscoveryUntrusted(
                    f"{what}: redirect target {url} is signed by {check.subject}, but the redirecting SMP "
                    f"named {redirect.certificate_uid}"
                )
            if metadata.redirect is not None:
                raise DiscoveryUntrusted(
                    f"{what}: redirect target {url} redirects again (to {metadata.redirect.href}); "
                    f"only one redirect is followed"
                )
        problems = echo_problems(metadata, participant, document_type)
        if problems:
            steps.append(Step("identifiers", False, "; ".join(problems)))
            raise DiscoveryUntrusted(f"{what}: SMP answer from {url} does not match the request: "
                                     + "; ".join(problems))
        steps.append(Step("identifiers", True, "answer matches the requested participant and document type"))
        return VerifiedMetadata(url, metadata, check, verdict, redirected_from, tuple(steps))



class Discovery:
    """SML -> SMP -> endpoint -> AP certificate, with a cache in front."""

    def __init__(
        self,
        sml: SmlLookup,
        smp: SmpClient,
        validator: CertificateValidator,
        cache: DiscoveryCache[EndpointResult] | None = None,
        *,
        transport_profile: str = AS4_V2,
    ) -> None:
        self.sml = sml
        self.smp = smp
        self.validator = validator
        self.cache = cache if cache is not None else DiscoveryCache(negative_types=NEGATIVE_ERRORS)
        self.transport_profile = transport_profile

    def _key(self, participant: Participant, document_type: Identifier, process: Identifier) -> tuple[str, ...]:
        return (participant.scheme.strip(), participant.value.strip().lower(), document_type.scheme.strip(),
                document_type.value.strip(), process.scheme.strip(), process.value.strip(), self.transport_profile)

    def forget(self, participant: Participant, document_type: Identifier, process: Identifier) -> None:
        """Drop the cached answer, e.g. when delivery showed the endpoint data is outdated (Peppol SMP
        1.x: senders may cache but must look up again when delivery fails)."""
        self.cache.invalidate(self._key(participant, document_type, process))

    def find_endpoint(self, participant: Participant, document_type: Identifier, process: Identifier, *,
                      at: datetime | None = None, use_cache: bool = True,
                      with_service_group: bool = False) -> EndpointResult:
        """The receiver's verified AS4 endpoint, or a DiscoveryError subclass."""
        if not use_cache or with_service_group:
            return self._find(participant, document_type, process, at, with_service_group)
        key = self._key(participant, document_type, process)
        return self.cache.get(key, lambda: self._find(participant, document_type, process, at, False))

    def _find(self, participant: Participant, document_type: Identifier, process: Identifier,
              at: datetime | None, with_service_group: bool) -> EndpointResult:
        at = at or self.smp.clock()
        steps: list[Step] = []
        try:
            return self._steps(participant, document_type, process, at, with_service_group, steps)
        except DiscoveryError as exc:
            exc.steps = tuple(steps)
            raise

    def _steps(self, participant: Participant, document_type: Identifier, process: Identifier, at: datetime,
               with_service_group: bool, steps: list[Step]) -> EndpointResult:
        try:
            answer = self.sml.lookup(participant)
        except DiscoveryError as exc:
            steps.append(Step("dns", False, exc.message))
            raise
        steps.append(Step("dns", True, answer.dns_name, {"dns_name": answer.dns_name}))
        steps.append(Step("naptr", True, "; ".join(str(r) for r in answer.records),
                          {"records": [str(r) for r in answer.records], "smp_uri": answer.smp_uri}))
        if with_service_group:
            # Informational only (the CLI lists the services): the ServiceMetadata request below decides.
            try:
                group = self.smp.service_group(answer.smp_uri, participant)
            except DiscoveryError as exc:
                steps.append(Step("services", False, exc.message, {"document_types": []}))
            else:
                steps.append(Step("services", True, f"{len(group.document_types)} document type(s) registered",
                                  {"document_types": [d.uri for d in group.document_types]}))
        verified = self.smp.service_metadata(answer.smp_uri, participant, document_type, at=at, steps=steps)
        endpoint = select_endpoint(verified.metadata, process, self.transport_profile, at=at)
        if endpoint is None:
            available = describe_endpoints(verified.metadata.endpoints)
            steps.append(Step("endpoint", False, "no matching endpoint", {"endpoints": available}))
            raise NotSupported(
                f"{_shown(participant)} has no {self.transport_profile} endpoint for document type "
                f"{_shown(document_type)} and process {_shown(process)} active at {at:%Y-%m-%dT%H:%M:%SZ} "
                f"({len(available)} endpoint(s) listed by the SMP, none matching)"
            )
        steps.append(Step("endpoint", True, endpoint.url, describe_endpoints([endpoint])[0]))
        if endpoint.certificate is None:
            steps.append(Step("ap-certificate", False, endpoint.certificate_problem or "missing"))
            raise DiscoveryUntrusted(
                f"endpoint {endpoint.url} of {_shown(participant)} has no usable certificate "
                f"({endpoint.certificate_problem})"
            )
        verdict = self.validator.validate(endpoint.certificate, Purpose.AP_ENCRYPTION, at)
        subject = endpoint.certificate.subject.rfc4514_string()
        steps.append(Step("ap-certificate", bool(verdict.valid), verdict.detail or ("valid" if verdict.valid else ""),
                          {"subject": subject, "reason": verdict.reason,
                           "not_before": endpoint.certificate.not_valid_before_utc.isoformat(),
                           "not_after": endpoint.certificate.not_valid_after_utc.isoformat()}))
        if not verdict.valid:
            raise _certificate_error(verdict, "access point", subject,
                                     f"endpoint {endpoint.url} of {_shown(participant)}")
        return EndpointResult(answer.smp_uri, endpoint.url, endpoint.certificate, verdict, endpoint.transport_profile,
                              endpoint, verified, tuple(steps))
