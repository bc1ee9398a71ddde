"""SMP answers as value objects: ServiceGroup and SignedServiceMetadata parsing, signature
verification over the bytes received, endpoint selection. Pure: no network, no clock of its own.

Dialects, all recognised by namespace URI (prefixes vary between SMP implementations):
- Peppol SMP 1.x, `http://busdox.org/serviceMetadata/publishing/1.0/` with identifiers in
  `http://busdox.org/transport/identifiers/1.0/` and the endpoint URL in wsa:EndpointReference/wsa:Address;
- OASIS BDXR SMP 1.0 (`.../SMP/2016/05`) and its draft (`.../SMP/2014/07`): one namespace for
  everything, the endpoint URL in EndpointURI.

Signature rules (Peppol SMP 1.x section 3.4 of our discovery digest): exactly one ds:Signature, a
child of the root; exactly one Reference with URI=""; its Transforms must contain the
enveloped-signature transform exactly once. A second transform that is inclusive C14N 1.0 is
accepted with a warning: it is what signxml emits by default, Java verifiers (peppol-commons,
hence phase4) accept it, it changes nothing in the digest input (the XMLDSig default conversion of
the node-set is that same C14N), and rejecting it would lose invoices to SMPs built that way
(vector gen_ssm-signxml-produced-two-transforms-smpA.xml is cryptographically valid). Any other
extra transform (XPath, XSLT, exclusive C14N, ...) is rejected because it could narrow what is signed.
RSA-SHA1/SHA-1 are refused unless `allow_sha1` (legacy mode for archived answers).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, SignXMLException
from signxml.verifier import SignatureConfiguration

from base.safexml import XmlError, parse_bytes
from certs.untrusted import load_der

BUSDOX_SMP = "http://busdox.org/serviceMetadata/publishing/1.0/"
BUSDOX_IDS = "http://busdox.org/transport/identifiers/1.0/"
WSA = "http://www.w3.org/2005/08/addressing"
BDXR_2014 = "http://docs.oasis-open.org/bdxr/ns/SMP/2014/07"
BDXR_2016 = "http://docs.oasis-open.org/bdxr/ns/SMP/2016/05"
DS = "http://www.w3.org/2000/09/xmldsig#"
DIALECTS = {BUSDOX_SMP: "busdox", BDXR_2016: "bdxr-2016-05", BDXR_2014: "bdxr-2014-07"}

AS4_V2 = "peppol-transport-as4-v2_0"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

_STRICT_SIGNATURE = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512})
_STRICT_DIGEST = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


class ServiceMetadataError(ValueError):
    """The SMP answer is not a usable ServiceGroup / ServiceMetadata; the message names the element."""


class Identifier(Protocol):
    @property
    def scheme(self) -> str: ...

    @property
    def value(self) -> str: ...


@dataclass(frozen=True)
class XmlId:
    """An identifier exactly as an SMP answer states it (trimmed), before any syntax validation."""

    scheme: str
    value: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}::{self.value}"

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class ServiceGroup:
    dialect: str
    participant: XmlId
    document_types: tuple[XmlId, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    transport_profile: str
    url: str
    certificate: x509.Certificate | None
    certificate_problem: str | None
    activation: datetime | None
    expiration: datetime | None
    require_business_level_signature: bool = False
    description: str = ""
    technical_contact: str = ""
    technical_information: str = ""

    @property
    def certificate_subject(self) -> str | None:
        return self.certificate.subject.rfc4514_string() if self.certificate is not None else None

    def active_at(self, at: datetime) -> bool:
        """Within [activation, expiration]; a missing date is unbounded; activation > expiration is never."""
        if self.activation is not None and self.expiration is not None and self.activation > self.expiration:
            return False
        if self.activation is not None and at < self.activation:
            return False
        return not (self.expiration is not None and at > self.expiration)


@dataclass(frozen=True)
class Process:
    process: XmlId
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Redirect:
    href: str
    certificate_uid: str


@dataclass(frozen=True)
class ServiceMetadata:
    dialect: str
    participant: XmlId | None
    document_type: XmlId | None
    processes: tuple[Process, ...] = ()
    redirect: Redirect | None = None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for p in self.processes for e in p.endpoints)


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    certificate: x509.Certificate | None
    subject: str | None
    algorithm: str | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # The element that was actually covered by the signature (from signxml, re-rendered from the
    # canonical bytes that were digested). Content is read from here, never from unsigned parts.
    signed_root: etree._Element | None = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------------------------------
# small XML helpers


def _text(el: etree._Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _children(parent: etree._Element, namespaces: Iterable[str], local: str) -> list[etree._Element]:
    wanted = {f"{{{ns}}}{local}" for ns in namespaces}
    return [c for c in parent if isinstance(c.tag, str) and c.tag in wanted]


def _one(parent: etree._Element, namespaces: Iterable[str], local: str, where: str,
         optional: bool = False) -> etree._Element | None:
    found = _children(parent, namespaces, local)
    if len(found) > 1:
        raise ServiceMetadataError(f"{where}: more than one {local} element")
    if not found:
        if optional:
            return None
        raise ServiceMetadataError(f"{where}: missing {local} element")
    return found[0]


def _ns(el: etree._Element) -> str:
    return etree.QName(el).namespace or ""


def _identifier(parent: etree._Element, smp_ns: str, local: str, where: str) -> XmlId:
    # busdox puts identifiers in the ids namespace; BDXR in its own. Accept both under busdox too.
    namespaces = (BUSDOX_IDS, smp_ns) if smp_ns == BUSDOX_SMP else (smp_ns,)
    el = _one(parent, namespaces, local, where)
    assert el is not None
    value = _text(el)
    if not value:
        raise ServiceMetadataError(f"{where}/{local}: empty identifier")
    return XmlId((el.get("scheme") or "").strip(), value)


def parse_datetime(text: str, where: str) -> datetime:
    """xs:dateTime (or xs:date) -> aware UTC datetime; no timezone means UTC (phase4/peppol-commons
    compare as local time, which depends on the server's zone; UTC is the portable reading)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ServiceMetadataError(f"{where}: {text.strip()!r} is not an xs:dateTime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def load_endpoint_certificate(text: str) -> x509.Certificate:
    """The base64 DER of smp:Certificate; tolerates PEM armour and line breaks (seen in the wild)."""
    body = re.sub(r"-----(BEGIN|END) CERTIFICATE-----", "", text)
    body = re.sub(r"\s+", "", body)
    if not body:
        raise ValueError("empty Certificate element")
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ValueError("Certificate element is not base64") from None
    try:
        return load_der(der)
    except ValueError:
        raise ValueError("Certificate element does not hold an X.509 certificate") from None


# ---------------------------------------------------------------------------------------------
# ServiceGroup


def _doctype_from_href(href: str, participant: XmlId) -> XmlId | None:
    """The document type of a ServiceMetadataReference href (pitfall 11).

    hrefs are unreliable (stale hosts, lowercase hex, whole path encoded as one segment), so only
    the part after `/{participant}/services/` is used, found case-insensitively after one decode.
    """
    decoded = unquote(href)
    marker = f"/{participant.uri}/services/".lower()
    index = decoded.lower().find(marker)
    if index < 0:
        return None
    rest = decoded[index + len(marker):].strip()
    scheme, sep, value = rest.partition("::")
    if not sep or not value:
        return None
    return XmlId(scheme.strip(), value.strip())


def parse_service_group(data: bytes | etree._Element) -> ServiceGroup:
    root = parse_bytes(data) if isinstance(data, bytes) else data
    smp_ns = _ns(root)
    if etree.QName(root).localname != "ServiceGroup" or smp_ns not in DIALECTS:
        raise ServiceMetadataError(f"root element {root.tag} is not an SMP ServiceGroup")
    participant = _identifier(root, smp_ns, "ParticipantIdentifier", "ServiceGroup")
    collection = _one(root, (smp_ns,), "ServiceMetadataReferenceCollection", "ServiceGroup")
    assert collection is not None
    doctypes: list[XmlId] = []
    problems: list[str] = []
    for ref in _children(collection, (smp_ns,), "ServiceMetadataReference"):
        href = (ref.get("href") or "").strip()
        doctype = _doctype_from_href(href, participant)
        if doctype is None:
            problems.append(f"ServiceMetadataReference href {href!r} does not contain /{participant.uri}/services/")
        elif doctype not in doctypes:
            doctypes.append(doctype)
    return ServiceGroup(DIALECTS[smp_ns], participant, tuple(doctypes), tuple(problems))


# ---------------------------------------------------------------------------------------------
# ServiceMetadata


def _endpoint(el: etree._Element, smp_ns: str, where: str) -> Endpoint:
    profile = (el.get("transportProfile") or "").strip()
    where = f"{where}/Endpoint[{profile or '?'}]"
    if smp_ns == BUSDOX_SMP:
        ref = _one(el, (WSA,), "EndpointReference", where)
        assert ref is not None
        url = _text(_one(ref, (WSA,), "Address", f"{where}/EndpointReference"))
    else:
        url = _text(_one(el, (smp_ns,), "EndpointURI", where))
    if not url:
        raise ServiceMetadataError(f"{where}: empty endpoint address")

    def optional_date(local: str) -> datetime | None:
        node = _one(el, (smp_ns,), local, where, optional=True)
        return parse_datetime(_text(node), f"{where}/{local}") if node is not None and _text(node) else None

    certificate: x509.Certificate | None = None
    problem: str | None = None
    cert_el = _one(el, (smp_ns,), "Certificate", where, optional=True)
    if cert_el is None:
        problem = "no Certificate element"
    else:
        try:
            certificate = load_endpoint_certificate(_text(cert_el))
        except ValueError as exc:
            problem = str(exc)
    rbls = _text(_one(el, (smp_ns,), "RequireBusinessLevelSignature", where, optional=True))
    return Endpoint(
        transport_profile=profile,
        url=url,
        certificate=certificate,
        certificate_problem=problem,
        activation=optional_date("ServiceActivationDate"),
        expiration=optional_date("ServiceExpirationDate"),
        require_business_level_signature=rbls.lower() in ("true", "1"),
        description=_text(_one(el, (smp_ns,), "ServiceDescription", where, optional=True)),
        technical_contact=_text(_one(el, (smp_ns,), "TechnicalContactUrl", where, optional=True)),
        technical_information=_text(_one(el, (smp_ns,), "TechnicalInformationUrl", where, optional=True)),
    )


def parse_service_metadata(data: bytes | etree._Element) -> ServiceMetadata:
    """Parse SignedServiceMetadata (or a bare ServiceMetadata). Does NOT check the signature: call
    verify_signature first and parse its `signed_root`."""
    root = parse_bytes(data) if isinstance(data, bytes) else data
    smp_ns = _ns(root)
    local = etree.QName(root).localname
    if smp_ns not in DIALECTS or local not in ("SignedServiceMetadata", "ServiceMetadata"):
        raise ServiceMetadataError(f"root element {root.tag} is not an SMP SignedServiceMetadata")
    dialect = DIALECTS[smp_ns]
    metadata = root if local == "ServiceMetadata" else _one(root, (smp_ns,), "ServiceMetadata", local)
    assert metadata is not None
    info = _one(metadata, (smp_ns,), "ServiceInformation", "ServiceMetadata", optional=True)
    redirect_el = _one(metadata, (smp_ns,), "Redirect", "ServiceMetadata", optional=True)
    if (info is None) == (redirect_el is None):
        raise ServiceMetadataError("ServiceMetadata: must contain exactly one of ServiceInformation or Redirect")
    if redirect_el is not None:
        href = (redirect_el.get("href") or "").strip()
        if not href:
            raise ServiceMetadataError("ServiceMetadata/Redirect: missing href")
        uid = _text(_one(redirect_el, (smp_ns,), "CertificateUID", "ServiceMetadata/Redirect"))
        if not uid:
            raise ServiceMetadataError("ServiceMetadata/Redirect/CertificateUID: empty")
        return ServiceMetadata(dialect, None, None, (), Redirect(href, uid))
    assert info is not None
    where = "ServiceInformation"
    participant = _identifier(info, smp_ns, "ParticipantIdentifier", where)
    document_type = _identifier(info, smp_ns, "DocumentIdentifier", where)
    process_list = _one(info, (smp_ns,), "ProcessList", where)
    assert process_list is not None
    processes: list[Process] = []
    for proc_el in _children(process_list, (smp_ns,), "Process"):
        process_id = _identifier(proc_el, smp_ns, "ProcessIdentifier", f"{where}/Process")
        proc_where = f"{where}/Process[{process_id.value}]"
        endpoint_list = _one(proc_el, (smp_ns,), "ServiceEndpointList", proc_where)
        assert endpoint_list is not None
        endpoints = tuple(
            _endpoint(e, smp_ns, proc_where) for e in _children(endpoint_list, (smp_ns,), "Endpoint")
        )
        processes.append(Process(process_id, endpoints))
    return ServiceMetadata(dialect, participant, document_type, tuple(processes), None)


# ---------------------------------------------------------------------------------------------
# identifier comparison and endpoint choice


def same_participant(a: Identifier, b: Identifier) -> bool:
    """Scheme exact, value case-insensitive (participant values under iso6523-actorid-upis)."""
    return a.scheme.strip() == b.scheme.strip() and a.value.strip().lower() == b.value.strip().lower()


def same_identifier(a: Identifier, b: Identifier) -> bool:
    """Document type / process identifiers: case-sensitive, surrounding whitespace ignored."""
    return a.scheme.strip() == b.scheme.strip() and a.value.strip() == b.value.strip()


def echo_problems(metadata: ServiceMetadata, participant: Identifier, document_type: Identifier) -> list[str]:
    """Differences between what was asked and what the ServiceInformation says it describes."""
    problems: list[str] = []
    if metadata.participant is not None and not same_participant(metadata.participant, participant):
        problems.append(
            f"answer is about participant {metadata.participant.uri}, "
            f"but {participant.scheme}::{participant.value} was requested"
        )
    if metadata.document_type is not None and not same_identifier(metadata.document_type, document_type):
        problems.append(
            f"answer is about document type {metadata.document_type.uri}, "
            f"but {document_type.scheme}::{document_type.value} was requested"
        )
    return problems


def select_endpoint(metadata: ServiceMetadata, process: Identifier, transport_profile: str = AS4_V2, *,
                    at: datetime) -> Endpoint | None:
    """The first endpoint for `process` (exact) and `transport_profile` active at `at` (as phase4's
    getEndpointAt: first match wins), or None."""
    for proc in metadata.processes:
        if not same_identifier(proc.process, process):
            continue
        for endpoint in proc.endpoints:
            if endpoint.transport_profile == transport_profile and endpoint.active_at(at):
                return endpoint
    return None


# ---------------------------------------------------------------------------------------------
# subject names (Redirect CertificateUID)

_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.ORGANIZATION_NAME: "O",
    NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L", NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.STREET_ADDRESS: "STREET", NameOID.EMAIL_ADDRESS: "EMAILADDRESS", NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.DOMAIN_COMPONENT: "DC", NameOID.USER_ID: "UID",
}
_ALIASES = {"E": "EMAILADDRESS", "EMAIL": "EMAILADDRESS", "S": "ST", "SN": "SERIALNUMBER",
            "2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
            "2.5.4.5": "SERIALNUMBER", "1.2.840.113549.1.9.1": "EMAILADDRESS"}


def _norm_value(value: str) -> str:
    return " ".join(value.split()).casefold()


def _split_dn(text: str) -> list[str]:
    parts, current, escaped, quoted = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in ",;+" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def dn_attributes(text: str) -> list[tuple[str, str]]:
    """`C=NO, O=x, CN=y` (any order, any spacing, `,` `;` or `+` separated) -> sorted (type, value) pairs."""
    attributes = []
    for part in _split_dn(text):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} in subject name {text!r} is not TYPE=value")
        key = key.strip().upper()
        attributes.append((_ALIASES.get(key, key), _norm_value(value)))
    return sorted(attributes)


def name_attributes(name: x509.Name) -> list[tuple[str, str]]:
    return sorted(
        (_SHORT_NAMES.get(attr.oid, attr.oid.dotted_string), _norm_value(str(attr.value))) for attr in name
    )


def subject_matches(certificate_uid: str, name: x509.Name) -> bool:
    """Compare a Redirect CertificateUID with a certificate subject as a set of RDNs (order, spacing
    and case of values do not matter; pitfall 13)."""
    try:
        return dn_attributes(certificate_uid) == name_attributes(name)
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# signature


def _signer_certificate(x509_data: etree._Element) -> x509.Certificate:
    certs = []
    for el in x509_data.iter(f"{{{DS}}}X509Certificate"):
        certs.append(load_endpoint_certificate(_text(el)))
    if not certs:
        raise ValueError("KeyInfo/X509Data has no X509Certificate")
    if len(certs) == 1:
        return certs[0]
    # A chain was included: the signer is the certificate that issued none of the others.
    issuers = {c.issuer.public_bytes() for c in certs}
    leaves = [c for c in certs if c.subject.public_bytes() not in issuers]
    if len(leaves) != 1:
        raise ValueError("KeyInfo/X509Data holds several certificates and no single leaf among them")
    return leaves[0]


def _structure_problems(root: etree._Element) -> tuple[list[str], list[str], etree._Element | None]:
    problems: list[str] = []
    warnings: list[str] = []
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    if not signatures:
        return ["the document has no ds:Signature"], warnings, None
    if len(signatures) > 1:
        problems.append(f"the document has {len(signatures)} ds:Signature elements; exactly one is allowed")
    signature = signatures[0]
    if signature.getparent() is not root:
        problems.append("ds:Signature must be a direct child of the document element")
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None:
        problems.append("ds:Signature has no SignedInfo")
        return problems, warnings, signature
    references = signed_info.findall(f"{{{DS}}}Reference")
    if len(references) != 1:
        problems.append(f"SignedInfo has {len(references)} Reference elements; exactly one is required")
    for reference in references:
        if reference.get("URI") != "":
            problems.append(f"Reference URI is {reference.get('URI')!r}; it must be \"\" (the whole document)")
        algorithms = [t.get("Algorithm") for t in reference.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        if algorithms.count(ENVELOPED) != 1:
            problems.append("the Reference must have exactly one enveloped-signature Transform")
        extra = [a for a in algorithms if a != ENVELOPED]
        if extra == [C14N_10]:
            warnings.append(
                "the Reference has a second Transform (inclusive C14N 1.0) besides enveloped-signature; "
                "Peppol SMP 1.x asks for exactly one, accepted as Java verifiers do"
            )
        elif extra:
            problems.append(f"the Reference has transforms that are not allowed: {', '.join(map(str, extra))}")
    return problems, warnings, signature


def verify_signature(data: bytes, *, allow_sha1: bool = False) -> SignatureCheck:
    """Verify the enveloped XMLDSig of an SMP answer over exactly the bytes received.

    Checks structure (see module doc), algorithms, and the cryptographic core validation with the
    key of the embedded X509Certificate. Does NOT decide whether that certificate is trusted, nor
    its validity period: that is the certificate validator's job (the caller passes
    `certificate` to it), so that an expired signer reads as "certificate expired", not as a broken
    signature.
    """
    try:
        root = parse_bytes(data)
    except XmlError as exc:
        return SignatureCheck(False, None, None, None, (str(exc),))
    problems, warnings, signature = _structure_problems(root)
    if signature is None:
        return SignatureCheck(False, None, None, None, tuple(problems), tuple(warnings))
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    algorithm = method.get("Algorithm") if method is not None else None
    certificate: x509.Certificate | None = None
    x509_data = signature.find(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data")
    if x509_data is None:
        problems.append("ds:KeyInfo has no X509Data with the signer's certificate")
    else:
        try:
            certificate = _signer_certificate(x509_data)
        except ValueError as exc:
            problems.append(str(exc))
    subject = certificate.subject.rfc4514_string() if certificate is not None else None
    if problems or certificate is None:
        return SignatureCheck(False, certificate, subject, algorithm, tuple(problems), tuple(warnings))

    config = SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=_STRICT_SIGNATURE | ({SignatureMethod.RSA_SHA1} if allow_sha1 else set()),
        digest_algorithms=_STRICT_DIGEST | ({DigestAlgorithm.SHA1} if allow_sha1 else set()),
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
        # Time validity belongs to the certificate validator; here only the mathematics is judged.
        verification_time=certificate.not_valid_before_utc,
    )
    verifier = XMLVerifier()
    # Java SMPs declare the ds namespace as default on <Signature>; lxml's inclusive C14N of the
    # SignedInfo sub-tree then emits spurious xmlns="" (discovery digest pitfall 1).
    verifier.excise_empty_xmlns_declarations = True
    try:
        # The bytes were vetted by safexml above (no DTD, bounded size); signxml parses the same bytes
        # with resolve_entities=False, so what is verified is exactly what was received.
        result = verifier.verify(data, x509_cert=certificate, expect_config=config)
    except InvalidDigest as exc:
        problems.append(f"the document was altered after signing ({exc})")
    except InvalidSignature:
        problems.append("SignatureValue does not verify with the embedded certificate's key")
    except InvalidCertificate as exc:
        problems.append(f"signer certificate unusable: {exc}")
    except InvalidInput as exc:
        message = str(exc)
        if "forbidden by configuration" in message:
            message += " (SHA-1 is refused since Peppol SMP 1.3.0; only RSA-SHA256 or stronger)"
        problems.append(message)
    except (SignXMLException, etree.DocumentInvalid, ValueError) as exc:
        problems.append(f"signature cannot be processed: {exc}")
    else:
        signed = result.signed_xml if not isinstance(result, list) else None
        if signed is None:
            problems.append("the signed content could not be recovered")
        else:
            return SignatureCheck(True, certificate, subject, algorithm, (), tuple(warnings), signed)
    return SignatureCheck(False, certificate, subject, algorithm, tuple(problems), tuple(warnings))


def describe_endpoints(endpoints: Sequence[Endpoint]) -> list[dict[str, object]]:
    """JSON-ready endpoint summaries (CLI and logs)."""
    return [
        {
            "transport_profile": e.transport_profile,
            "url": e.url,
            "certificate_subject": e.certificate_subject,
            "certificate_problem": e.certificate_problem,
            "activation": e.activation.isoformat() if e.activation else None,
            "expiration": e.expiration.isoformat() if e.expiration else None,
        }
        for e in endpoints
    ]
