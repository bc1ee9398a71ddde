"""WS-Security signing and verification of AS4 messages (WSS 1.1.1, X.509 token profile, SwA 1.1).

Signing lays the signature out the way phase4/WSS4J do (shared/docs/as4.md section 3): a
BinarySecurityToken with the signer certificate, a ds:Signature with exclusive C14N, RSA-SHA256 and
SHA-256 references to eb:Messaging, the SOAP Body and every attachment (Attachment-Content-Signature-
Transform), and a KeyInfo whose SecurityTokenReference points at the BST. The caller serialises the
signed tree exactly once; nothing here pretty-prints or re-serialises.

Verification works on the element tree parsed from the bytes received and never raises for a bad
message: it returns a `SignatureReport` whose `error` is the ebMS error we would answer with.

Error mapping (our choice, aligned with phase4 where phase4 has one; phase4's WSS4J layer answers most
signature failures with EBMS:0102 because it cannot tell them apart, while its own checks use 0101/0103):

- EBMS:0103 PolicyNoncompliance (phase4 >= 4.2.6): the signing key is not referenced through a
  SecurityTokenReference/wsse:Reference to an X509v3 BinarySecurityToken (issuer-serial, SKI,
  KeyValue, X509Data, PKIPath).
- EBMS:0101 FailedAuthentication, everything else:
  * no wsse:Security or no ds:Signature, or more than one of either;
  * algorithms outside the allow-list, checked before any crypto: CanonicalizationMethod other than
    exc-c14n, SignatureMethod other than rsa-sha256/384/512, DigestMethod other than sha256/384/512,
    a Transform other than exactly exc-c14n (for `#id`) or exactly the SwA content-signature
    transform (for `cid:`), a reference URI of any other form;
  * the same Id value (wsu:Id, Id or ID) on two elements -- the signature wrapping defence;
  * the referenced BST missing, outside our wsse:Security header, or not a readable certificate;
  * a reference that resolves to nothing, a signed attachment that was not supplied, a digest mismatch;
  * a SignatureValue that does not verify with the BST's key;
  * eb:Messaging, the Body or a required attachment not covered by a reference that verified.

Certificate trust (chain to the Peppol AP CA, validity, revocation) is not decided here: the report
hands back the signer certificate for `certs` to judge.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, cast
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import FAILED_AUTHENTICATION, POLICY_NONCOMPLIANCE, As4Error
from base import safexml
from certs import untrusted
from certs.keystore import KeyMaterial

CHUNK_SIZE = 64 * 1024

SIGNATURE_METHODS: dict[str, type[hashes.HashAlgorithm]] = {
    ns.RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
DIGEST_METHODS: dict[str, str] = {
    ns.SHA256: "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}

_ID_ATTRIBUTES = (f"{{{ns.WSU}}}Id", "Id", "ID")
_SOAP_NAMESPACES = (ns.S12, ns.S11)
_DER = serialization.Encoding.DER


# --------------------------------------------------------------------------- attachments


@dataclass
class AttachmentContent:
    """The octets a `cid:` reference covers, as the caller has them after decryption.

    `mime_type` is the type at signing time (for Peppol `application/gzip`, the EncryptedData
    MimeType), because it selects the Attachment-Content-Signature-Transform rule. `open` returns a
    fresh binary stream each call, so a large payload is read from disk in chunks.
    """

    content_id: str
    mime_type: str
    open: Callable[[], BinaryIO]

    @classmethod
    def from_stream(cls, content_id: str, mime_type: str, stream: BinaryIO) -> AttachmentContent:
        """Read a seekable stream the caller keeps owning (e.g. a decrypted attachment's body).

        Each `open` rewinds it and hands out a view whose close() leaves the stream open, so the
        payload can still be gunzipped after the signature check.
        """
        def open_view() -> BinaryIO:
            stream.seek(0)
            return cast(BinaryIO, io.BufferedReader(_BorrowedStream(stream)))

        return cls(content_id, mime_type, open_view)


class _BorrowedStream(io.RawIOBase):
    """A read-only view of another stream that does not close it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _base_mime_type(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()


def _is_xml_type(mime_type: str) -> bool:
    base = _base_mime_type(mime_type)
    return base in ("text/xml", "application/xml") or base.endswith("+xml")


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def _crlf_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Normalise CR, LF and CRLF to CRLF across chunk borders (WSS4J's CRLFOutputStream)."""
    pending_cr = False
    for chunk in chunks:
        if pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF whose CR ended the previous chunk
        pending_cr = chunk.endswith(b"\r")
        yield chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def attachment_digest(attachment: AttachmentContent, digest_name: str = "sha256") -> bytes:
    """Digest of an attachment after WSS4J's Attachment-Content-Signature-Transform.

    XML types are exclusive-C14N'ed (comments omitted), `text/*` gets CRLF line ends, anything else
    (the Peppol case, application/gzip) is digested raw. Raw and text content stream in chunks; an XML
    attachment has to be parsed whole, which is why Peppol always compresses.
    """
    digest = hashlib.new(digest_name)
    with attachment.open() as stream:
        if _is_xml_type(attachment.mime_type):
            root = safexml.parse_stream(stream)
            digest.update(etree.tostring(root.getroottree(), method="c14n", exclusive=True, with_comments=False))
        elif _base_mime_type(attachment.mime_type).startswith("text/"):
            for chunk in _crlf_chunks(_read_chunks(stream)):
                digest.update(chunk)
        else:
            for chunk in _read_chunks(stream):
                digest.update(chunk)
    return digest.digest()


# --------------------------------------------------------------------------- shared helpers


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def _c14n(element: etree._Element, prefixes: Sequence[str]) -> bytes:
    return etree.tostring(
        element, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=list(prefixes) or None
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_base64(text: str | None) -> bytes:
    """Decode base64 allowing whitespace and line breaks anywhere (pitfall 19)."""
    return base64.b64decode("".join((text or "").split()), validate=True)


def soap_parts(envelope: etree._Element) -> tuple[str, etree._Element | None, etree._Element | None]:
    """SOAP namespace, Header and Body of an envelope; None for a part that is not exactly one direct child."""
    qname = etree.QName(envelope)
    if qname.localname != "Envelope" or qname.namespace not in _SOAP_NAMESPACES:
        return "", None, None
    soap = qname.namespace
    headers, bodies = envelope.findall(_q(soap, "Header")), envelope.findall(_q(soap, "Body"))
    if len(headers) != 1 or len(bodies) != 1:
        return soap, None, None
    return soap, headers[0], bodies[0]


def _element_ids(element: etree._Element) -> set[str]:
    return {value for attr in _ID_ATTRIBUTES if (value := element.get(attr)) is not None}


def _index_ids(envelope: etree._Element) -> tuple[dict[str, etree._Element], set[str]]:
    """Every Id value in the document and the values found on more than one element."""
    index: dict[str, etree._Element] = {}
    duplicates: set[str] = set()
    for element in envelope.iter(etree.Element):
        for value in _element_ids(element):
            if value in index:
                duplicates.add(value)
            else:
                index[value] = element
    return index, duplicates


def _inclusive_prefixes(parent: etree._Element) -> list[str]:
    inclusive = parent.find(_q(ns.EC, "InclusiveNamespaces"))
    if inclusive is None:
        return []
    return (inclusive.get("PrefixList") or "").split()


# --------------------------------------------------------------------------- signing


def _sub(parent: etree._Element, namespace: str, local: str, prefix: str, **attrib: str) -> etree._Element:
    """A child element, declaring its namespace only when it is not in scope with that prefix already."""
    nsmap = None if parent.nsmap.get(prefix) == namespace else {prefix: namespace}
    return etree.SubElement(parent, _q(namespace, local), attrib=attrib, nsmap=nsmap)


def _declaring_wsu(element: etree._Element) -> etree._Element:
    """The element itself when wsu is in scope, else an equal element that declares xmlns:wsu.

    lxml cannot add a declaration to an existing element, and without one it would invent an `ns0`
    prefix; phase4 declares wsu on the Body itself, so we swap in a copy that does the same.
    """
    if ns.WSU in element.nsmap.values():
        return element
    replacement = etree.Element(element.tag, attrib=dict(element.attrib), nsmap={**element.nsmap, "wsu": ns.WSU})
    replacement.text, replacement.tail = element.text, element.tail
    replacement.extend(list(element))
    parent = element.getparent()
    if parent is not None:
        parent.replace(element, replacement)
    return replacement


def _ensure_wsu_id(element: etree._Element, prefix: str) -> tuple[etree._Element, str]:
    existing = element.get(_q(ns.WSU, "Id"))
    if existing:
        return element, existing
    element = _declaring_wsu(element)
    new_id = f"{prefix}{uuid.uuid4()}"
    element.set(_q(ns.WSU, "Id"), new_id)
    return element, new_id


def _security_header(header: etree._Element, soap: str) -> etree._Element:
    security = header.find(_q(ns.WSSE, "Security"))
    if security is None:
        security = etree.Element(_q(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
        security.set(_q(soap, "mustUnderstand"), "true" if soap == ns.S12 else "1")
        header.insert(0, security)
    return security


def _add_transform(transforms: etree._Element, algorithm: str, prefix_list: Sequence[str] | None) -> None:
    transform = _sub(transforms, ns.DS, "Transform", "ds", Algorithm=algorithm)
    if prefix_list:
        _sub(transform, ns.EC, "InclusiveNamespaces", "ec", PrefixList=" ".join(prefix_list))


def _add_reference(
    signed_info: etree._Element, uri: str, transform: str, prefix_list: Sequence[str] | None, digest: bytes
) -> etree._Element:
    reference = _sub(signed_info, ns.DS, "Reference", "ds", URI=uri)
    _add_transform(_sub(reference, ns.DS, "Transforms", "ds"), transform, prefix_list)
    _sub(reference, ns.DS, "DigestMethod", "ds", Algorithm=ns.SHA256)
    _sub(reference, ns.DS, "DigestValue", "ds").text = _b64(digest)
    return reference


def _as_received(envelope: etree._Element) -> etree._Element:
    """The tree a receiver parses from our serialisation of `envelope`.

    lxml's C14N of a sub-tree of a tree built in memory does not reliably render InclusiveNamespaces
    prefixes declared on ancestors (seen with lxml 6.1.3: `xmlns:S12` sometimes missing), while C14N of a
    parsed tree does. So digests and the signature are computed over a parsed copy -- exactly the input
    the receiver canonicalises. The caller still serialises the signed `envelope` itself, once.
    """
    return safexml.parse_bytes(etree.tostring(envelope))


def sign(
    envelope: etree._Element,
    key: KeyMaterial,
    attachments: Sequence[AttachmentContent],
    *,
    prefix_list: Sequence[str] = ("S12",),
) -> list[etree._Element]:
    """Sign eb:Messaging, the Body and every attachment; return the ds:Reference elements.

    The references are what the sender keeps to check the receipt's non-repudiation information.
    `prefix_list` goes into the InclusiveNamespaces of SignedInfo and of the Messaging reference
    (phase4 uses "S12"). Raises ValueError when the envelope is not a SOAP envelope with a Header
    holding exactly one eb:Messaging, or is already signed.
    """
    soap, header, body = soap_parts(envelope)
    if header is None or body is None:
        raise ValueError("cannot sign: the element is not a SOAP envelope with a Header and a Body")
    messaging_blocks = header.findall(_q(ns.EB, "Messaging"))
    if len(messaging_blocks) != 1:
        raise ValueError(f"cannot sign: the SOAP Header holds {len(messaging_blocks)} eb:Messaging blocks, not 1")
    security = _security_header(header, soap)
    if security.find(_q(ns.DS, "Signature")) is not None:
        raise ValueError("cannot sign: the wsse:Security header already holds a ds:Signature")

    _, messaging_id = _ensure_wsu_id(messaging_blocks[0], "msg-")
    _, body_id = _ensure_wsu_id(body, "id-")
    prefixes = list(prefix_list)
    # checked before anything is added, so a refused envelope is left as it was (apart from the Ids)
    received_ids, duplicates = _index_ids(_as_received(envelope))
    if duplicates:
        raise ValueError(f"cannot sign: the Id value(s) {', '.join(sorted(duplicates))} occur on more than one "
                         f"element, so a receiver would reject the signature")

    bst_id = f"X509-{uuid.uuid4()}"
    bst = _sub(security, ns.WSSE, "BinarySecurityToken", "wsse", EncodingType=ns.BST_BASE64, ValueType=ns.BST_X509V3)
    bst.set(_q(ns.WSU, "Id"), bst_id)
    bst.text = _b64(key.certificate.public_bytes(_DER))

    signature = _sub(security, ns.DS, "Signature", "ds", Id=f"SIG-{uuid.uuid4()}")
    signed_info = _sub(signature, ns.DS, "SignedInfo", "ds")
    c14n_method = _sub(signed_info, ns.DS, "CanonicalizationMethod", "ds", Algorithm=ns.C14N_EXCL)
    if prefixes:
        _sub(c14n_method, ns.EC, "InclusiveNamespaces", "ec", PrefixList=" ".join(prefixes))
    _sub(signed_info, ns.DS, "SignatureMethod", "ds", Algorithm=ns.RSA_SHA256)

    references = [
        _add_reference(signed_info, f"#{messaging_id}", ns.C14N_EXCL, prefixes,
                       hashlib.sha256(_c14n(received_ids[messaging_id], prefixes)).digest()),
        _add_reference(signed_info, f"#{body_id}", ns.C14N_EXCL, None,
                       hashlib.sha256(_c14n(received_ids[body_id], [])).digest()),
    ]
    for attachment in attachments:
        references.append(_add_reference(signed_info, f"cid:{attachment.content_id}", ns.SWA_CONTENT_SIGNATURE,
                                         None, attachment_digest(attachment)))

    ids_with_signed_info, _ = _index_ids(_as_received(envelope))
    received_signed_info = ids_with_signed_info[signature.get("Id") or ""].find(_q(ns.DS, "SignedInfo"))
    signature_value = key.private_key.sign(_c14n(received_signed_info, prefixes), padding.PKCS1v15(), hashes.SHA256())
    _sub(signature, ns.DS, "SignatureValue", "ds").text = _b64(signature_value)
    key_info = _sub(signature, ns.DS, "KeyInfo", "ds", Id=f"KI-{uuid.uuid4()}")
    token_reference = _sub(key_info, ns.WSSE, "SecurityTokenReference", "wsse")
    token_reference.set(_q(ns.WSU, "Id"), f"STR-{uuid.uuid4()}")
    _sub(token_reference, ns.WSSE, "Reference", "wsse", URI=f"#{bst_id}", ValueType=ns.BST_X509V3)
    return references


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class RequiredCoverage:
    """What a valid signature must cover; the AS4 default is eb:Messaging and the Body."""

    messaging: bool = True
    body: bool = True
    attachment_content_ids: Sequence[str] = ()


@dataclass
class ReferenceResult:
    uri: str
    digest_valid: bool | None  # None: not checkable (the attachment was not supplied)
    digest_method: str
    transforms: list[str]
    problem: str | None = None


@dataclass
class SignatureReport:
    signature_valid: bool = False  # the SignatureValue verified over the canonical SignedInfo
    signer: x509.Certificate | None = None
    references: list[ReferenceResult] = field(default_factory=list)
    signed_info_references: list[etree._Element] = field(default_factory=list)
    covered_ids: list[str] = field(default_factory=list)  # `#id` targets whose digest verified
    covered_content_ids: list[str] = field(default_factory=list)  # `cid:` targets whose digest verified
    problems: list[str] = field(default_factory=list)
    error: As4Error | None = None

    @property
    def signer_subject(self) -> str | None:
        return self.signer.subject.rfc4514_string() if self.signer is not None else None

    @property
    def valid(self) -> bool:
        return self.error is None and self.signature_valid

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _fail(self, problem: str, code: str = FAILED_AUTHENTICATION) -> SignatureReport:
        """Record a problem; the first one decides the ebMS error we answer with."""
        self.problems.append(problem)
        if self.error is None:
            self.error = As4Error(code, problem)
        return self


AttachmentSource = Mapping[str, AttachmentContent] | Callable[[str], AttachmentContent | None]


def _lookup_attachment(source: AttachmentSource, content_id: str) -> AttachmentContent | None:
    """Literal Content-ID first, then percent-decoded: WSS4J takes `cid:` literally (pitfall 7)."""
    for candidate in dict.fromkeys((content_id, unquote(content_id))):
        if isinstance(source, Mapping):
            found = source.get(candidate)
        else:
            try:
                found = source(candidate)
            except LookupError:
                found = None
        if found is not None:
            return found
    return None


def _content_id_matches(required: str, uri_content_id: str) -> bool:
    return required in (uri_content_id, unquote(uri_content_id))


@dataclass
class _Reference:
    element: etree._Element
    uri: str
    transforms: list[tuple[str, list[str]]]  # (algorithm, InclusiveNamespaces PrefixList)
    digest_method: str
    digest_value: bytes


def _parse_signed_info(signed_info: etree._Element, report: SignatureReport) -> list[_Reference] | None:
    """Structure and algorithm allow-list of SignedInfo; nothing here touches key or digest."""
    c14n_method = signed_info.find(_q(ns.DS, "CanonicalizationMethod"))
    c14n_algorithm = c14n_method.get("Algorithm") if c14n_method is not None else None
    if c14n_algorithm != ns.C14N_EXCL:
        report._fail(f"SignedInfo CanonicalizationMethod {c14n_algorithm!r} is not allowed; only exclusive C14N "
                     f"({ns.C14N_EXCL}) is accepted")
    method = signed_info.find(_q(ns.DS, "SignatureMethod"))
    method_algorithm = method.get("Algorithm") if method is not None else None
    if method_algorithm not in SIGNATURE_METHODS:
        report._fail(f"SignatureMethod {method_algorithm!r} is not allowed; accepted are "
                     f"{', '.join(SIGNATURE_METHODS)}")

    references: list[_Reference] = []
    for element in signed_info.findall(_q(ns.DS, "Reference")):
        uri = element.get("URI") or ""
        transforms = [(t.get("Algorithm") or "", _inclusive_prefixes(t))
                      for t in element.findall(f"{_q(ns.DS, 'Transforms')}/{_q(ns.DS, 'Transform')}")]
        digest_method_el = element.find(_q(ns.DS, "DigestMethod"))
        digest_method = (digest_method_el.get("Algorithm") or "") if digest_method_el is not None else ""
        algorithms = [algorithm for algorithm, _ in transforms]
        if digest_method not in DIGEST_METHODS:
            report._fail(f"reference {uri!r}: DigestMethod {digest_method!r} is not allowed; accepted are "
                         f"{', '.join(DIGEST_METHODS)}")
        if uri.startswith("#") and len(uri) > 1 and not uri.startswith("#xpointer("):
            if algorithms != [ns.C14N_EXCL]:
                report._fail(f"reference {uri!r}: transforms {algorithms} are not allowed; a same-document "
                             f"reference must have exactly one exclusive C14N transform")
        elif uri.startswith("cid:"):
            if algorithms != [ns.SWA_CONTENT_SIGNATURE]:
                report._fail(f"reference {uri!r}: transforms {algorithms} are not allowed; an attachment reference "
                             f"must have exactly the Attachment-Content-Signature-Transform")
        else:
            report._fail(f"reference URI {uri!r} is not allowed; only '#<Id>' and 'cid:<Content-ID>' are accepted")
        try:
            digest_value = decode_base64(element.findtext(_q(ns.DS, "DigestValue")))
        except ValueError:
            report._fail(f"reference {uri!r}: DigestValue is not base64")
            digest_value = b""
        references.append(_Reference(element, uri, transforms, digest_method, digest_value))
    if not references:
        report._fail("SignedInfo holds no ds:Reference")
    return None if report.error is not None else references


def _signer_certificate(
    signature: etree._Element, security: etree._Element, index: Mapping[str, etree._Element], report: SignatureReport
) -> x509.Certificate | None:
    """The certificate of the BST that KeyInfo's SecurityTokenReference points at, in this Security header."""
    key_info = signature.find(_q(ns.DS, "KeyInfo"))
    token_reference = key_info.find(_q(ns.WSSE, "SecurityTokenReference")) if key_info is not None else None
    reference = token_reference.find(_q(ns.WSSE, "Reference")) if token_reference is not None else None
    if reference is None:
        kinds = [etree.QName(c).localname for c in (token_reference if token_reference is not None else key_info)
                 if isinstance(c.tag, str)] if key_info is not None else []
        report._fail(f"the signing certificate is not referenced as a BinarySecurityToken (KeyInfo holds "
                     f"{kinds or 'nothing'}); Peppol requires a wsse:Reference to an X509v3 BST",
                     POLICY_NONCOMPLIANCE)
        return None
    uri = reference.get("URI") or ""
    value_type = reference.get("ValueType")
    if value_type not in (None, ns.BST_X509V3):
        report._fail(f"the SecurityTokenReference has ValueType {value_type!r}; Peppol requires X509v3",
                     POLICY_NONCOMPLIANCE)
        return None
    bst = index.get(uri[1:]) if uri.startswith("#") else None
    if bst is None or bst.tag != _q(ns.WSSE, "BinarySecurityToken") or bst.getparent() is not security:
        report._fail(f"the SecurityTokenReference URI {uri!r} does not point to a BinarySecurityToken in the "
                     f"same wsse:Security header")
        return None
    if bst.get("ValueType") != ns.BST_X509V3:
        report._fail(f"BinarySecurityToken {uri} has ValueType {bst.get('ValueType')!r}; Peppol requires a single "
                     f"X509v3 certificate", POLICY_NONCOMPLIANCE)
        return None
    encoding = bst.get("EncodingType")
    if encoding not in (None, ns.BST_BASE64):
        report._fail(f"BinarySecurityToken {uri} has EncodingType {encoding!r}; only Base64Binary is accepted")
        return None
    try:
        der = decode_base64(bst.text)
    except ValueError:
        report._fail(f"BinarySecurityToken {uri} is not base64")
        return None
    try:
        # Read completely now, so the caller's trust check cannot trip over a lazily parsed field later.
        return untrusted.load_der(der)
    except untrusted.MalformedCertificate as exc:
        report._fail(f"BinarySecurityToken {uri} does not hold a readable X.509 certificate: {exc}")
        return None


def _check_digest(
    reference: _Reference, index: Mapping[str, etree._Element], attachments: AttachmentSource
) -> tuple[bool | None, str | None, etree._Element | None]:
    """(digest valid, problem, the element a same-document reference resolved to)."""
    digest_name = DIGEST_METHODS[reference.digest_method]
    if reference.uri.startswith("cid:"):
        content_id = reference.uri[4:]
        attachment = _lookup_attachment(attachments, content_id)
        if attachment is None:
            return None, f"attachment {reference.uri} is signed but not supplied; its digest cannot be checked", None
        try:
            actual = attachment_digest(attachment, digest_name)
        except (safexml.XmlError, etree.C14NError) as exc:
            return False, f"attachment {reference.uri} has an XML type but cannot be canonicalised: {exc}", None
        target = None
    else:
        target = index.get(reference.uri[1:])
        if target is None:
            return False, f"reference {reference.uri} points to no element with that Id", None
        try:
            actual = hashlib.new(digest_name, _c14n(target, reference.transforms[0][1])).digest()
        except etree.C14NError:
            return False, f"{reference.uri} cannot be canonicalised (e.g. a relative namespace URI)", target
    if actual != reference.digest_value:
        return False, f"digest of {reference.uri} does not match: the referenced content was changed", target
    return True, None, target


def _rsa_verify(public_key: rsa.RSAPublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return False
    return True


def verify(
    envelope: etree._Element,
    attachments: AttachmentSource,
    *,
    require: RequiredCoverage | None = None,
) -> SignatureReport:
    """Verify the WS-Security signature of a received envelope; never raises for a bad message.

    `envelope` is the root of the tree parsed from the received bytes (not a tree built in memory:
    see `_as_received`). `attachments` gives the decrypted (still compressed) attachment octets by
    Content-ID, e.g. `AttachmentContent.from_stream` over `DecryptedAttachment.body`; a lookup that
    raises LookupError or returns None means "not supplied". `require` defaults to Messaging + Body;
    pass the Content-IDs of all attachments of the message (the PartInfo hrefs) so an unsigned one is
    rejected. The report's `signed_info_references` are what `receipts.sign_receipt` needs.
    """
    require = require if require is not None else RequiredCoverage()
    report = SignatureReport()
    _soap, header, body = soap_parts(envelope)
    if header is None or body is None:
        return report._fail("the message is not a SOAP envelope with a Header and a Body, so it carries no signature")
    securities = header.findall(_q(ns.WSSE, "Security"))
    if len(securities) != 1:
        return report._fail(f"the SOAP Header holds {len(securities)} wsse:Security headers; exactly 1 is required")
    security = securities[0]
    signatures = security.findall(_q(ns.DS, "Signature"))
    if len(signatures) != 1:
        return report._fail(f"wsse:Security holds {len(signatures)} ds:Signature elements; exactly 1 is required")
    signature = signatures[0]
    signed_info = signature.find(_q(ns.DS, "SignedInfo"))
    if signed_info is None:
        return report._fail("ds:Signature has no ds:SignedInfo")
    report.signed_info_references = signed_info.findall(_q(ns.DS, "Reference"))

    index, duplicates = _index_ids(envelope)
    if duplicates:
        report._fail(f"the Id value(s) {', '.join(sorted(duplicates))} occur on more than one element "
                     f"(possible signature wrapping)")
    references = _parse_signed_info(signed_info, report)
    if references is None or report.error is not None:
        return report  # unknown algorithms and ambiguous Ids are rejected before any crypto
    report.signer = _signer_certificate(signature, security, index, report)
    if report.signer is None:
        return report
    public_key = report.signer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return report._fail("the signing certificate does not hold an RSA key")

    messaging = header.findall(_q(ns.EB, "Messaging"))
    the_messaging = messaging[0] if len(messaging) == 1 else None
    messaging_covered = body_covered = False
    for reference in references:
        valid, problem, target = _check_digest(reference, index, attachments)
        report.references.append(ReferenceResult(reference.uri, valid, reference.digest_method,
                                                 [algorithm for algorithm, _ in reference.transforms], problem))
        if problem is not None:
            report._fail(problem)
        if valid and target is not None:
            report.covered_ids.append(reference.uri[1:])
            messaging_covered |= the_messaging is not None and target is the_messaging
            body_covered |= target is body
        elif valid:
            report.covered_content_ids.append(reference.uri[4:])

    try:
        signature_value = decode_base64(signature.findtext(_q(ns.DS, "SignatureValue")))
    except ValueError:
        return report._fail("ds:SignatureValue is not base64")
    method = signed_info.find(_q(ns.DS, "SignatureMethod"))
    algorithm = SIGNATURE_METHODS[method.get("Algorithm") if method is not None else ""]()
    c14n_method = signed_info.find(_q(ns.DS, "CanonicalizationMethod"))
    prefixes = _inclusive_prefixes(c14n_method) if c14n_method is not None else []
    try:
        canonical_signed_info = _c14n(signed_info, prefixes)
    except etree.C14NError:
        return report._fail("ds:SignedInfo cannot be canonicalised (e.g. a relative namespace URI)")
    report.signature_valid = _rsa_verify(public_key, signature_value, canonical_signed_info, algorithm)
    if not report.signature_valid:
        report._fail(f"the SignatureValue does not verify with the key of {report.signer_subject}: SignedInfo was "
                     f"changed or signed with another key")

    if require.messaging and not messaging_covered:
        report._fail("eb:Messaging (the one header block under SOAP Header) is not covered by a verified reference")
    if require.body and not body_covered:
        report._fail("the SOAP Body is not covered by a verified reference")
    for content_id in require.attachment_content_ids:
        if not any(_content_id_matches(content_id, covered) for covered in report.covered_content_ids):
            report._fail(f"attachment cid:{content_id} is not covered by a verified reference")
    return report
