"""The XML our SMP serves (Peppol SMP 1.x, busdox namespace): ServiceGroup and SignedServiceMetadata.

Pure functions: identifiers and certificates in, bytes (or an lxml element) out. The signature
follows shared/docs/discovery.md 3.4: enveloped, RSA-SHA256, SHA-256, inclusive C14N 1.0 for
SignedInfo and the reference, exactly ONE Transform (enveloped-signature), KeyInfo carrying
X509SubjectName and X509Certificate like phoss-smp. The signed tree is serialised exactly once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner
from signxml.algorithms import SignatureConstructionMethod

from certs.keystore import KeyMaterial
from certs.untrusted import load_der
from smp.identifiers import DocumentTypeId, ParticipantId, ProcessId, smp_service_metadata_path

SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
IDS_NS = "http://busdox.org/transport/identifiers/1.0/"
WSA_NS = "http://www.w3.org/2005/08/addressing"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
AS4_V2 = "peppol-transport-as4-v2_0"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Default namespace for smp (as every Java SMP writes it); ids/wsa prefixed. The signature itself
# uses the `ds:` prefix, which also keeps lxml-based verifiers clear of the xmlns="" C14N bug
# (discovery.md 6.2 pitfall 1).
_NSMAP = {None: SMP_NS, "ids": IDS_NS, "wsa": WSA_NS}


class ProcessEndpoint(NamedTuple):
    """One process of a document type and the AS4 endpoint that receives it."""

    process: ProcessId
    endpoint_url: str
    ap_cert_der: bytes
    activation: datetime | None = None
    expiration: datetime | None = None
    description: str = ""
    contact: str = ""


def service_metadata_url(base_url: str, participant: ParticipantId, doctype: DocumentTypeId) -> str:
    return base_url.rstrip("/") + smp_service_metadata_path(participant, doctype)


def _serialise(root: etree._Element) -> bytes:
    # lxml writes the declaration with single quotes; some clients match `encoding="UTF-8"` literally.
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _sub(parent: etree._Element, ns: str, local: str, text: str | None = None,
         attrib: dict[str, str] | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{local}", attrib or {})
    if text is not None:
        el.text = text
    return el


def _identifier(parent: etree._Element, local: str, identifier: ParticipantId | DocumentTypeId | ProcessId) -> None:
    _sub(parent, IDS_NS, local, identifier.value, {"scheme": identifier.scheme})


def _xsd_datetime(value: datetime, what: str) -> str:
    # Clients compare these against "now"; a naive time would be read as local time by Java clients
    # (discovery.md 3.3), so only timezone-aware datetimes are accepted and they are written in UTC.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no timezone; give an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_group_xml(participant: ParticipantId, doctypes: Iterable[DocumentTypeId], base_url: str) -> bytes:
    """Unsigned ServiceGroup listing one ServiceMetadataReference per document type served.

    An empty `doctypes` gives the empty collection a known participant without services must get
    (200, not 404; discovery.md 6.2 pitfall 8).
    """
    root = etree.Element(f"{{{SMP_NS}}}ServiceGroup", nsmap=_NSMAP)
    _identifier(root, "ParticipantIdentifier", participant)
    collection = _sub(root, SMP_NS, "ServiceMetadataReferenceCollection")
    for doctype in doctypes:
        _sub(collection, SMP_NS, "ServiceMetadataReference",
             attrib={"href": service_metadata_url(base_url, participant, doctype)})
    return _serialise(root)


def service_metadata_xml(participant: ParticipantId, doctype: DocumentTypeId,
                         processes: Sequence[ProcessEndpoint | tuple]) -> etree._Element:
    """Unsigned SignedServiceMetadata element (sign it with `sign_service_metadata`).

    Each entry of `processes` becomes one Process with one `peppol-transport-as4-v2_0` Endpoint.
    Plain tuples in ProcessEndpoint order are accepted.
    """
    entries = [p if isinstance(p, ProcessEndpoint) else ProcessEndpoint(*p) for p in processes]
    if not entries:
        # The XSD requires at least one Process; a document type without endpoints is not served at all.
        raise ValueError(f"document type {doctype.scheme}::{doctype.value} has no process to publish")
    seen: set[tuple[str, str]] = set()
    root = etree.Element(f"{{{SMP_NS}}}SignedServiceMetadata", nsmap=_NSMAP)
    info = _sub(_sub(root, SMP_NS, "ServiceMetadata"), SMP_NS, "ServiceInformation")
    _identifier(info, "ParticipantIdentifier", participant)
    _identifier(info, "DocumentIdentifier", doctype)
    process_list = _sub(info, SMP_NS, "ProcessList")
    for entry in entries:
        key = (entry.process.scheme, entry.process.value)
        if key in seen:
            # Clients take the first match and peppol-commons warns on duplicates: never publish two.
            raise ValueError(f"process {key[0]}::{key[1]} listed twice for {doctype.scheme}::{doctype.value}")
        seen.add(key)
        if not entry.endpoint_url.startswith(("https://", "http://")):
            raise ValueError(f"endpoint URL {entry.endpoint_url!r} is not an http(s) URL")
        if (entry.activation and entry.expiration
                and entry.activation.astimezone(UTC) >= entry.expiration.astimezone(UTC)):
            raise ValueError(f"endpoint for process {key[1]}: activation {entry.activation.isoformat()} is not "
                             f"before expiration {entry.expiration.isoformat()}")
        try:
            load_der(entry.ap_cert_der)
        except ValueError:
            raise ValueError(f"endpoint certificate for process {key[1]} is not a DER X.509 certificate") from None
        process = _sub(process_list, SMP_NS, "Process")
        _identifier(process, "ProcessIdentifier", entry.process)
        endpoint = _sub(_sub(process, SMP_NS, "ServiceEndpointList"), SMP_NS, "Endpoint",
                        attrib={"transportProfile": AS4_V2})
        _sub(_sub(endpoint, WSA_NS, "EndpointReference"), WSA_NS, "Address", entry.endpoint_url)
        _sub(endpoint, SMP_NS, "RequireBusinessLevelSignature", "false")
        if entry.activation:
            _sub(endpoint, SMP_NS, "ServiceActivationDate", _xsd_datetime(entry.activation, "activation"))
        if entry.expiration:
            _sub(endpoint, SMP_NS, "ServiceExpirationDate", _xsd_datetime(entry.expiration, "expiration"))
        _sub(endpoint, SMP_NS, "Certificate", base64.b64encode(entry.ap_cert_der).decode("ascii"))
        _sub(endpoint, SMP_NS, "ServiceDescription", entry.description)
        _sub(endpoint, SMP_NS, "TechnicalContactUrl", entry.contact)
    return root


def _key_info(certificate: x509.Certificate) -> etree._Element:
    key_info = etree.Element(f"{{{DS_NS}}}KeyInfo", nsmap={"ds": DS_NS})
    data = _sub(key_info, DS_NS, "X509Data")
    # RFC 2253 order (CN first), as phoss-smp writes it; clients comparing a Redirect's
    # CertificateUID read this name.
    _sub(data, DS_NS, "X509SubjectName", certificate.subject.rfc4514_string())
    # One line of base64 without CR: Java's &#13; line ends are a classic re-serialisation trap.
    _sub(data, DS_NS, "X509Certificate", base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii"))
    return key_info


def sign_service_metadata(element: etree._Element, smp_key: KeyMaterial) -> bytes:
    """Sign an unsigned SignedServiceMetadata element with our SMP key; returns the final bytes.

    The element is not modified; the signed copy is serialised once, with an XML declaration.
    """
    if element.tag != f"{{{SMP_NS}}}SignedServiceMetadata":
        raise ValueError(f"expected a busdox SignedServiceMetadata element, got {element.tag}")
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed = signer.sign(
        element,
        key=smp_key.private_key,
        key_info=_key_info(smp_key.certificate),
        # signxml adds the c14n algorithm as a second Transform by default; Peppol SMP allows only
        # the enveloped-signature Transform (discovery.md 7).
        exclude_c14n_transform_element=True,
    )
    return _serialise(signed)
