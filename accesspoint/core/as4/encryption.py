"""AS4 attachment encryption and decryption (WSS SwA 1.1 Content-Only, Peppol algorithm suite).

Sender: one random AES-128 key per message, wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256) for the
receiver's certificate, which travels in a BinarySecurityToken; each attachment is AES-128-GCM
encrypted with its own 96-bit IV and no AAD, and the MIME part body becomes `IV || ciphertext || tag`.
The XML written into wsse:Security copies phase4/WSS4J element for element (shared/docs/as4.md section 3).

Receiver: read the algorithms from the message (pitfall 5), accept only the Peppol suite, check that
the key was wrapped for OUR certificate, unwrap, and decrypt each attachment streaming into a spooled
temporary file. Plaintext is handed out only after the GCM tag verified; on any failure it is deleted.

Error codes (phase4 answers every WSS4J failure with EBMS:0102; we keep 0102 for everything that means
"we cannot decrypt this" and use EBMS:0103 where the message breaks the Peppol security policy):
- EBMS:0102 FailedDecryption: no EncryptedKey, key not wrapped for our certificate, ciphertext shorter
  than IV + tag, GCM tag mismatch (which is also how a failed RSA unwrap shows), the attachment named
  by a CipherReference is not in the message, a reference that resolves to nothing, an unreadable
  certificate or base64 value.
- EBMS:0103 PolicyNoncompliance: key transport other than xenc11#rsa-oaep with explicit SHA-256 digest
  and MGF1-SHA-256, OAEP parameters (a label), data algorithm other than aes128-gcm, key reference not
  a BST X509v3 (issuer-serial, SKI, ... like phase4 >= 4.2.6), EncryptedData outside wsse:Security or
  not of type Attachment-Content-Only, duplicate Ids, an attachment encrypted twice.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, cast
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lxml import etree

from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import FAILED_DECRYPTION, POLICY_NONCOMPLIANCE, As4Error
from certs import untrusted
from certs.keystore import KeyMaterial

KEY_BYTES = 16  # AES-128
IV_BYTES = 12  # 96-bit GCM nonce, as WSS4J/XMLSec write it
TAG_BYTES = 16  # 128-bit GCM tag
CHUNK = 64 * 1024

RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
# One compiled XPath instead of a Python walk over every element per lookup (the walk was ~15 % of receiving
# a 10 KB message, bench/README.md).
_ID_LOOKUP = etree.XPath("//*[@Id=$value or @wsu:Id=$value or @ID=$value]", namespaces={"wsu": ns.WSU})


@dataclass(frozen=True)
class PlainAttachment:
    """An attachment to encrypt: `mime_type` is its type before encryption (for Peppol `application/gzip`).

    `stream` is read from its current position to the end.
    """

    content_id: str
    mime_type: str
    stream: BinaryIO


@dataclass(frozen=True)
class EncryptedAttachment:
    """The MIME part body to send (`IV || ciphertext || tag`), rewound; the caller closes it."""

    content_id: str
    body: BinaryIO
    size: int


@dataclass(frozen=True)
class DecryptedAttachment:
    """An attachment after a successful GCM check, rewound; `mime_type` is EncryptedData/@MimeType."""

    content_id: str
    mime_type: str
    body: BinaryIO
    size: int


@dataclass(frozen=True)
class EncryptedKeyInfo:
    """An xenc:EncryptedKey as found in the message (nothing checked against policy yet)."""

    id: str
    algorithm: str
    oaep_digest: str | None
    mgf: str | None
    has_oaep_params: bool
    recipient: x509.Certificate
    cipher_value: bytes
    data_references: tuple[str, ...]


@dataclass(frozen=True)
class EncryptedDataInfo:
    """An xenc:EncryptedData for one attachment; `cipher_reference` is the `cid:` URI as written."""

    id: str
    type: str | None
    mime_type: str | None
    algorithm: str
    key_id: str
    cipher_reference: str
    transforms: tuple[str, ...]


@dataclass(frozen=True)
class EncryptionHeader:
    """What wsse:Security says about encryption, in document order (for decryption and `inspect`)."""

    keys: tuple[EncryptedKeyInfo, ...]
    data: tuple[EncryptedDataInfo, ...]


# ---------------------------------------------------------------------------------------------------
# sender


def encrypt_attachments(
    security: etree._Element,
    recipient: x509.Certificate,
    attachments: Sequence[PlainAttachment],
    *,
    spill_threshold: int = 1 << 20,
) -> list[EncryptedAttachment]:
    """Encrypt every attachment for `recipient` and insert BST, EncryptedKey and EncryptedData elements
    at the start of `security` (WSS4J prepends them to the already signed header).

    Bodies larger than `spill_threshold` bytes live in temporary files (0: always on disk). The
    recipient certificate must already be verified (Peppol AP CA, validity, revocation) by the caller.
    """
    if security.tag != f"{{{ns.WSSE}}}Security":
        raise ValueError(f"expected a wsse:Security element, got {security.tag}")
    if not attachments:
        raise ValueError("no attachments to encrypt: Peppol messages carry the payload as an attachment")
    if security.find(f"{{{ns.XENC}}}EncryptedKey") is not None:
        raise ValueError("this wsse:Security header already holds an xenc:EncryptedKey; encrypt a message only once")
    seen: set[str] = set()
    for att in attachments:
        _check_content_id(att.content_id)
        if att.content_id in seen:
            raise ValueError(f"attachment content id {att.content_id!r} given twice")
        seen.add(att.content_id)
        if not att.mime_type:
            raise ValueError(f"attachment {att.content_id!r} has no MIME type (needed for EncryptedData/@MimeType)")
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"receiver certificate {_describe(recipient)} has no RSA key; Peppol key transport is RSA-OAEP",
        )

    key = os.urandom(KEY_BYTES)
    encrypted: list[EncryptedAttachment] = []
    try:
        for att in attachments:
            encrypted.append(_encrypt_stream(key, att, spill_threshold))
    except BaseException:
        for done in encrypted:
            done.body.close()
        raise
    wrapped = public_key.encrypt(key, _OAEP)

    bst_id = f"G{uuid.uuid4()}"
    ek_id = f"EK-{uuid.uuid4()}"
    ed_ids = [f"ED-{uuid.uuid4()}" for _ in attachments]
    built = [_bst(security, bst_id, recipient), _encrypted_key(security, ek_id, bst_id, wrapped, ed_ids)]
    built += [_encrypted_data(security, ed_id, ek_id, att) for ed_id, att in zip(ed_ids, attachments, strict=True)]
    for index, element in enumerate(built):
        security.insert(index, element)
    return encrypted


def _check_content_id(content_id: str) -> None:
    # WSS4J resolves `cid:` literally while RFC 2392 says percent-encoded: with URI-safe ids only, both
    # readings agree (as4.md pitfall 7), so we refuse to send anything else.
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
    if not content_id or not set(content_id) <= allowed:
        raise ValueError(
            f"attachment content id {content_id!r} must be non-empty, without angle brackets and use only "
            "URI-safe characters (e.g. <uuid>@<domain>)"
        )


def _encrypt_stream(key: bytes, att: PlainAttachment, spill_threshold: int) -> EncryptedAttachment:
    iv = os.urandom(IV_BYTES)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    out = _spool(spill_threshold)
    try:
        out.write(iv)
        while chunk := att.stream.read(CHUNK):
            out.write(encryptor.update(chunk))
        out.write(encryptor.finalize())
        out.write(encryptor.tag)
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return EncryptedAttachment(att.content_id, out, size)


def _sub(
    parent: etree._Element,
    namespace: str,
    prefix: str,
    local: str,
    attrib: Sequence[tuple[str, str]] = (),
    extra_ns: Mapping[str, str] | None = None,
) -> etree._Element:
    """A child element that declares its prefixes only where they are not already in scope, which is
    where WSS4J's DOM puts them (xmlns:xenc on EncryptedKey, xmlns:ds on each ds element...)."""
    wanted = {prefix: namespace, **(extra_ns or {})}
    in_scope = parent.nsmap
    nsmap = {p: uri for p, uri in wanted.items() if in_scope.get(p) != uri}
    element = etree.SubElement(parent, f"{{{namespace}}}{local}", nsmap=nsmap or None)  # type: ignore[arg-type]
    for name, value in attrib:
        element.set(name, value)
    return element


def _bst(security: etree._Element, bst_id: str, cert: x509.Certificate) -> etree._Element:
    bst = _sub(
        security, ns.WSSE, "wsse", "BinarySecurityToken",
        [("EncodingType", ns.BST_BASE64), ("ValueType", ns.BST_X509V3), (f"{{{ns.WSU}}}Id", bst_id)],
        extra_ns={"wsu": ns.WSU},
    )
    bst.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
    return bst


def _encrypted_key(
    security: etree._Element, ek_id: str, bst_id: str, wrapped: bytes, ed_ids: Sequence[str]
) -> etree._Element:
    ek = _sub(security, ns.XENC, "xenc", "EncryptedKey", [("Id", ek_id)])
    method = _sub(ek, ns.XENC, "xenc", "EncryptionMethod", [("Algorithm", ns.RSA_OAEP_11)])
    _sub(method, ns.DS, "ds", "DigestMethod", [("Algorithm", ns.SHA256)])
    _sub(method, ns.XENC11, "xenc11", "MGF", [("Algorithm", ns.MGF1_SHA256)])
    key_info = _sub(ek, ns.DS, "ds", "KeyInfo")
    str_ = _sub(key_info, ns.WSSE, "wsse", "SecurityTokenReference")
    _sub(str_, ns.WSSE, "wsse", "Reference", [("URI", f"#{bst_id}"), ("ValueType", ns.BST_X509V3)])
    cipher_data = _sub(ek, ns.XENC, "xenc", "CipherData")
    _sub(cipher_data, ns.XENC, "xenc", "CipherValue").text = base64.b64encode(wrapped).decode("ascii")
    ref_list = _sub(ek, ns.XENC, "xenc", "ReferenceList")
    for ed_id in ed_ids:
        _sub(ref_list, ns.XENC, "xenc", "DataReference", [("URI", f"#{ed_id}")])
    return ek


def _encrypted_data(security: etree._Element, ed_id: str, ek_id: str, att: PlainAttachment) -> etree._Element:
    ed = _sub(
        security, ns.XENC, "xenc", "EncryptedData",
        [("Id", ed_id), ("MimeType", att.mime_type), ("Type", ns.SWA_CONTENT_ONLY)],
    )
    _sub(ed, ns.XENC, "xenc", "EncryptionMethod", [("Algorithm", ns.AES128_GCM)])
    key_info = _sub(ed, ns.DS, "ds", "KeyInfo")
    str_ = _sub(
        key_info, ns.WSSE, "wsse", "SecurityTokenReference",
        [(f"{{{ns.WSSE11}}}TokenType", ns.TOKEN_ENCRYPTED_KEY)], extra_ns={"wsse11": ns.WSSE11},
    )
    _sub(str_, ns.WSSE, "wsse", "Reference", [("URI", f"#{ek_id}")])
    cipher_data = _sub(ed, ns.XENC, "xenc", "CipherData")
    cipher_ref = _sub(cipher_data, ns.XENC, "xenc", "CipherReference", [("URI", f"cid:{att.content_id}")])
    transforms = _sub(cipher_ref, ns.XENC, "xenc", "Transforms")
    _sub(transforms, ns.DS, "ds", "Transform", [("Algorithm", ns.SWA_CIPHERTEXT)])
    return ed


# ---------------------------------------------------------------------------------------------------
# receiver


def read_encryption_header(envelope: etree._Element) -> EncryptionHeader:
    """The EncryptedKey and EncryptedData elements of the wsse:Security header, with references resolved.

    Structural rules are enforced here (references by BST, Ids unique, EncryptedData only in the
    header); algorithm policy and the recipient check are `decrypt_attachments`' job.
    """
    security = _security_header(envelope)
    root = envelope.getroottree().getroot()
    for stray in root.iter(f"{{{ns.XENC}}}EncryptedData"):
        if stray.getparent() is not security:
            raise As4Error(
                POLICY_NONCOMPLIANCE,
                f"xenc:EncryptedData found in {_path(stray)}; Peppol encrypts only attachments, described "
                "in the wsse:Security header",
            )
    keys = tuple(_read_encrypted_key(root, security, ek) for ek in security.findall(f"{{{ns.XENC}}}EncryptedKey"))
    data = tuple(_read_encrypted_data(root, security, ed) for ed in security.findall(f"{{{ns.XENC}}}EncryptedData"))
    key_ids = {k.id for k in keys}
    for item in data:
        if item.key_id not in key_ids:
            raise As4Error(
                FAILED_DECRYPTION,
                f"EncryptedData {item.id} refers to key {item.key_id!r}, which is no xenc:EncryptedKey in "
                "wsse:Security",
            )
    data_ids = {d.id for d in data}
    for key in keys:
        for ref in key.data_references:
            if ref not in data_ids:
                raise As4Error(
                    FAILED_DECRYPTION,
                    f"EncryptedKey {key.id} lists DataReference #{ref}, which is no xenc:EncryptedData in "
                    "wsse:Security",
                )
    return EncryptionHeader(keys, data)


def decrypt_attachments(
    envelope: etree._Element,
    key: KeyMaterial | Sequence[KeyMaterial],
    ciphertexts: Mapping[str, BinaryIO],
    *,
    spill_threshold: int = 1 << 20,
) -> dict[str, DecryptedAttachment]:
    """Decrypt every encrypted attachment of the message with our key.

    `key` may list several of our keys: during a certificate renewal senders still encrypt for the
    certificate the SMP published before, so the old key stays usable until that has settled.

    `ciphertexts` maps content ids (without angle brackets) to seekable streams of the received part
    bodies; they are not closed. The result is keyed like `ciphertexts`; plaintexts larger than
    `spill_threshold` bytes live in temporary files (0: always on disk). Attachments that no
    EncryptedData covers are not returned: compare the keys with the message's attachments to reject those.
    """
    header = read_encryption_header(envelope)
    if not header.keys:
        listed = ", ".join(f"<{cid}>" for cid in ciphertexts) or "none"
        raise As4Error(FAILED_DECRYPTION, f"the message is not encrypted: wsse:Security holds no xenc:EncryptedKey "
                                          f"(attachments: {listed})")
    for item in header.data:
        _check_data_policy(item)
    ours = (key,) if isinstance(key, KeyMaterial) else tuple(key)
    if not ours:
        raise ValueError("no key material to decrypt with")
    session_keys = {k.id: _unwrap(k, ours) for k in header.keys}

    targets: dict[str, EncryptedDataInfo] = {}
    for item in header.data:
        content_id = _resolve_cid(item.cipher_reference, ciphertexts)
        if content_id is None:
            # EBMS:0102 rather than 0011: like phase4, where WSS4J's attachment callback fails. A MIME part
            # without PartInfo (or the reverse) is the messaging layer's EBMS:0011/0003 before we run.
            raise As4Error(
                FAILED_DECRYPTION,
                f"EncryptedData {item.id} refers to attachment {item.cipher_reference}, which is not in the "
                "message",
            )
        if content_id in targets:
            raise As4Error(
                POLICY_NONCOMPLIANCE,
                f"attachment {content_id} is encrypted twice (EncryptedData {targets[content_id].id} and {item.id})",
            )
        targets[content_id] = item

    results: dict[str, DecryptedAttachment] = {}
    try:
        for content_id, item in targets.items():
            body, size = _decrypt_stream(
                session_keys[item.key_id], ciphertexts[content_id], content_id, spill_threshold
            )
            # WSS4J restores EncryptedData/@MimeType; without it the type before encryption is unknown.
            mime_type = item.mime_type or "application/octet-stream"
            results[content_id] = DecryptedAttachment(content_id, mime_type, body, size)
    except BaseException:
        for done in results.values():
            done.body.close()
        raise
    return results


def unencrypted_attachments(envelope: etree._Element, content_ids: Sequence[str]) -> list[str]:
    """The content ids (in the given order) that no EncryptedData of the wsse:Security header covers.

    A `cid:` reference covers the attachment `decrypt_attachments` would resolve it to, and only that one.
    """
    security = _find_security(envelope)
    available = set(content_ids)
    covered: set[str] = set()
    for ed in security.findall(f"{{{ns.XENC}}}EncryptedData") if security is not None else ():
        ref = ed.find(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherReference")
        uri = ref.get("URI", "") if ref is not None else ""
        resolved = _resolve_cid(uri, available) if uri.startswith("cid:") else None
        if resolved is not None:
            covered.add(resolved)
    return [cid for cid in content_ids if cid not in covered]


def _security_header(envelope: etree._Element) -> etree._Element:
    security = _find_security(envelope)
    if security is None:
        raise As4Error(FAILED_DECRYPTION, "the message has no wsse:Security header, so nothing can be decrypted")
    return security


def _find_security(envelope: etree._Element) -> etree._Element | None:
    root = envelope.getroottree().getroot()
    soap_ns = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or soap_ns not in (ns.S12, ns.S11):
        raise As4Error(FAILED_DECRYPTION, f"not a SOAP envelope: root element is {root.tag}")
    headers = root.findall(f"{{{soap_ns}}}Header/{{{ns.WSSE}}}Security")
    if len(headers) > 1:
        raise As4Error(POLICY_NONCOMPLIANCE, f"the message has {len(headers)} wsse:Security headers; Peppol uses one")
    return headers[0] if headers else None


def _read_encrypted_key(root: etree._Element, security: etree._Element, ek: etree._Element) -> EncryptedKeyInfo:
    ek_id = ek.get("Id") or ""
    what = f"EncryptedKey {ek_id or '(without Id)'}"
    if not ek_id:
        raise As4Error(FAILED_DECRYPTION, f"{what}: no Id, so no EncryptedData can refer to it")
    _unique(root, ek_id, ek)
    method = ek.find(f"{{{ns.XENC}}}EncryptionMethod")
    if method is None or not method.get("Algorithm"):
        raise As4Error(POLICY_NONCOMPLIANCE, f"{what}: no xenc:EncryptionMethod/@Algorithm")
    digest = method.find(f"{{{ns.DS}}}DigestMethod")
    mgf = method.find(f"{{{ns.XENC11}}}MGF")
    recipient = _referenced_certificate(root, security, ek, what)
    cipher_value = ek.find(f"{{{ns.XENC}}}CipherData/{{{ns.XENC}}}CipherValue")
    if cipher_value is None:
        raise As4Error(FAILED_DECRYPTION, f"{what}: no xenc:CipherData/xenc:CipherValue")
    refs = []
    for data_ref in ek.iterfind(f"{{{ns.XENC}}}ReferenceList/{{{ns.XENC}}}DataReference"):
        uri = data_ref.get("URI", "")
        if not uri.startswith("#"):
            raise As4Error(FAILED_DECRYPTION, f"{what}: DataReference URI {uri!r} is not a same-document reference")
        refs.append(uri[1:])
    return EncryptedKeyInfo(
        id=ek_id,
        algorithm=method.get("Algorithm", ""),
        oaep_digest=digest.get("Algorithm") if digest is not None else None,
        mgf=mgf.get("Algorithm") if mgf is not None else None,
        has_oaep_params=method.find(f"{{{ns.XENC}}}OAEPparams") is not None,
        recipient=recipient,
        cipher_value=_b64(cipher_value.text, f"{what}: CipherValue"),
        data_references=tuple(refs),
    )


def _referenced_certificate(
    root: etree._Element, security: etree._Element, ek: etree._Element, what: str
) -> x509.Certificate:
    str_ = ek.find(f"{{{ns.DS}}}KeyInfo/{{{ns.WSSE}}}SecurityTokenReference")
    if str_ is None:
        raise As4Error(POLICY_NONCOMPLIANCE, f"{what}: no ds:KeyInfo/wsse:SecurityTokenReference to the recipient BST")
    ref = str_.find(f"{{{ns.WSSE}}}Reference")
    if ref is None:
        kinds = ", ".join(etree.QName(child).localname for child in str_) or "nothing"
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: the recipient certificate is identified by {kinds}; Peppol requires a wsse:Reference to a "
            "BinarySecurityToken",
        )
    uri = ref.get("URI", "")
    if not uri.startswith("#") or len(uri) < 2:
        raise As4Error(
            POLICY_NONCOMPLIANCE, f"{what}: wsse:Reference URI {uri!r} does not point to a BST in the message"
        )
    target = _unique(root, uri[1:], None)
    if target is None:
        raise As4Error(FAILED_DECRYPTION, f"{what}: wsse:Reference {uri} resolves to no element")
    if target.tag != f"{{{ns.WSSE}}}BinarySecurityToken" or target.getparent() is not security:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: wsse:Reference {uri} points to {_path(target)}, not to a BinarySecurityToken in wsse:Security",
        )
    if target.get("ValueType") != ns.BST_X509V3:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: BinarySecurityToken {uri[1:]} has ValueType {target.get('ValueType')!r}; Peppol requires "
            "a single X509v3 certificate",
        )
    encoding = target.get("EncodingType")
    if encoding is not None and encoding != ns.BST_BASE64:
        raise As4Error(POLICY_NONCOMPLIANCE, f"{what}: BinarySecurityToken {uri[1:]} has EncodingType {encoding!r}")
    der = _b64(target.text, f"BinarySecurityToken {uri[1:]}")
    try:
        # Read completely now, like WSS4J's CertificateFactory: the refusal texts name the certificate.
        return untrusted.load_der(der)
    except untrusted.MalformedCertificate as exc:
        raise As4Error(
            FAILED_DECRYPTION, f"BinarySecurityToken {uri[1:]} holds no readable X.509 certificate: {exc}"
        ) from None


def _read_encrypted_data(root: etree._Element, security: etree._Element, ed: etree._Element) -> EncryptedDataInfo:
    ed_id = ed.get("Id") or ""
    what = f"EncryptedData {ed_id or '(without Id)'}"
    if not ed_id:
        raise As4Error(FAILED_DECRYPTION, f"{what}: no Id, so the EncryptedKey cannot list it")
    _unique(root, ed_id, ed)
    method = ed.find(f"{{{ns.XENC}}}EncryptionMethod")
    ref = ed.find(f"{{{ns.DS}}}KeyInfo/{{{ns.WSSE}}}SecurityTokenReference/{{{ns.WSSE}}}Reference")
    key_id = ref.get("URI", "") if ref is not None else ""
    if not key_id.startswith("#"):
        # Without a KeyInfo the key is the EncryptedKey whose ReferenceList names this EncryptedData.
        owners = [
            ek.get("Id", "")
            for ek in security.findall(f"{{{ns.XENC}}}EncryptedKey")
            if any(r.get("URI") == f"#{ed_id}" for r in ek.iterfind(f".//{{{ns.XENC}}}DataReference"))
        ]
        if len(owners) != 1:
            raise As4Error(FAILED_DECRYPTION, f"{what}: no KeyInfo reference to an EncryptedKey and no single "
                           "EncryptedKey that lists it")
        key_id = f"#{owners[0]}"
    cipher_data = ed.find(f"{{{ns.XENC}}}CipherData")
    cipher_ref = cipher_data.find(f"{{{ns.XENC}}}CipherReference") if cipher_data is not None else None
    if cipher_ref is None:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: no xenc:CipherData/xenc:CipherReference; Peppol encrypts attachments only (Content-Only)",
        )
    transforms = tuple(
        t.get("Algorithm", "") for t in cipher_ref.iterfind(f"{{{ns.XENC}}}Transforms/{{{ns.DS}}}Transform")
    )
    return EncryptedDataInfo(
        id=ed_id,
        type=ed.get("Type"),
        mime_type=ed.get("MimeType"),
        algorithm=method.get("Algorithm", "") if method is not None else "",
        key_id=key_id[1:],
        cipher_reference=cipher_ref.get("URI", ""),
        transforms=transforms,
    )


def _unique(root: etree._Element, value: str, expected: etree._Element | None) -> etree._Element | None:
    """The one element carrying Id/wsu:Id/ID `value`; two of them would let a forged element win."""
    hits = _ID_LOOKUP(root, value=value)
    if len(hits) > 1:
        raise As4Error(POLICY_NONCOMPLIANCE, f"Id {value!r} occurs {len(hits)} times in the message")
    if expected is not None and hits and hits[0] is not expected:
        raise As4Error(POLICY_NONCOMPLIANCE, f"Id {value!r} is ambiguous")
    return hits[0] if hits else None


def _check_key_policy(item: EncryptedKeyInfo) -> None:
    what = f"EncryptedKey {item.id}"
    if item.algorithm == RSA_OAEP_MGF1P:
        # xmlenc#rsa-oaep-mgf1p fixes MGF1 to SHA-1. The Peppol PMode restricts WSS4J to the suite
        # Basic128GCMSha256MgfSha256, so phase4 refuses it too; accepting it would only widen our policy.
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: key transport {item.algorithm} uses MGF1 with SHA-1; Peppol requires {ns.RSA_OAEP_11} with "
            "SHA-256 and MGF1-SHA-256",
        )
    if item.algorithm != ns.RSA_OAEP_11:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: key transport algorithm {item.algorithm} is not allowed; Peppol requires {ns.RSA_OAEP_11}",
        )
    if item.oaep_digest is None:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: rsa-oaep without ds:DigestMethod means the SHA-1 default; Peppol requires {ns.SHA256}",
        )
    if item.oaep_digest != ns.SHA256:
        raise As4Error(
            POLICY_NONCOMPLIANCE, f"{what}: OAEP digest {item.oaep_digest} is not allowed; Peppol requires {ns.SHA256}"
        )
    if item.mgf is None:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: rsa-oaep without xenc11:MGF means the MGF1-SHA-1 default; Peppol requires {ns.MGF1_SHA256}",
        )
    if item.mgf != ns.MGF1_SHA256:
        raise As4Error(
            POLICY_NONCOMPLIANCE, f"{what}: mask generation {item.mgf} is not allowed; Peppol requires {ns.MGF1_SHA256}"
        )
    if item.has_oaep_params:
        raise As4Error(POLICY_NONCOMPLIANCE, f"{what}: xenc:OAEPparams (an OAEP label) is not used in Peppol")


def _check_data_policy(item: EncryptedDataInfo) -> None:
    what = f"EncryptedData {item.id}"
    if item.type != ns.SWA_CONTENT_ONLY:
        raise As4Error(
            POLICY_NONCOMPLIANCE, f"{what}: Type {item.type!r} is not supported; Peppol uses {ns.SWA_CONTENT_ONLY}"
        )
    if item.algorithm != ns.AES128_GCM:
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: data encryption algorithm {item.algorithm or '(none)'} is not allowed; Peppol requires "
            f"{ns.AES128_GCM}",
        )
    if not item.cipher_reference.startswith("cid:"):
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: CipherReference {item.cipher_reference!r} is not a cid: attachment reference",
        )
    if item.transforms != (ns.SWA_CIPHERTEXT,):
        raise As4Error(
            POLICY_NONCOMPLIANCE,
            f"{what}: CipherReference transforms {list(item.transforms)} are not the single {ns.SWA_CIPHERTEXT}",
        )


def _unwrap(item: EncryptedKeyInfo, ours: Sequence[KeyMaterial]) -> bytes:
    _check_key_policy(item)
    recipient = item.recipient.public_bytes(serialization.Encoding.DER)
    matching = [k for k in ours if k.certificate.public_bytes(serialization.Encoding.DER) == recipient]
    if not matching:
        raise As4Error(
            FAILED_DECRYPTION,
            f"message is encrypted for certificate {_describe(item.recipient)}, not ours "
            f"({'; '.join(_describe(k.certificate) for k in ours)})",
        )
    key = matching[0]
    try:
        session_key = key.private_key.decrypt(item.cipher_value, _OAEP)
    except ValueError:
        session_key = b""
    if len(session_key) != KEY_BYTES:
        # A failed unwrap must look exactly like a failed GCM check, or the error answer becomes an
        # RSA padding oracle for whoever can post to us. WSS4J's EncryptedKeyProcessor (phase4)
        # likewise continues with a random key; the attachment then fails its integrity check.
        session_key = os.urandom(KEY_BYTES)
    return session_key


def _resolve_cid(uri: str, available: Container[str]) -> str | None:
    # WSS4J takes the id after `cid:` literally; RFC 2392 says percent-encoded: try both (pitfall 7).
    literal = uri[4:]
    if literal in available:
        return literal
    decoded = unquote(literal)
    return decoded if decoded in available else None


def _decrypt_stream(
    key: bytes, source: BinaryIO, content_id: str, spill_threshold: int
) -> tuple[BinaryIO, int]:
    if not source.seekable():
        raise ValueError(f"the ciphertext stream of attachment {content_id} must be seekable")
    total = source.seek(0, os.SEEK_END)
    if total < IV_BYTES + TAG_BYTES:
        raise As4Error(
            FAILED_DECRYPTION,
            f"attachment {content_id} has {total} bytes; AES-GCM needs at least {IV_BYTES + TAG_BYTES} "
            "(IV and tag)",
        )
    source.seek(total - TAG_BYTES)
    tag = source.read(TAG_BYTES)
    source.seek(0)
    iv = source.read(IV_BYTES)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    out = _spool(spill_threshold)
    try:
        remaining = total - IV_BYTES - TAG_BYTES
        while remaining:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                raise As4Error(FAILED_DECRYPTION, f"attachment {content_id} ended early while decrypting")
            remaining -= len(chunk)
            out.write(decryptor.update(chunk))
        try:
            out.write(decryptor.finalize())
        except InvalidTag:
            raise As4Error(
                FAILED_DECRYPTION,
                f"attachment {content_id} failed the AES-GCM integrity check: it was altered in transit, or the "
                "session key in the EncryptedKey was not wrapped with our key",
            ) from None
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out, size


def _spool(spill_threshold: int) -> BinaryIO:
    # SpooledTemporaryFile treats max_size=0 as "never spill"; for us 0 means "straight to disk".
    return cast(BinaryIO, SpooledTemporaryFile(max_size=max(1, spill_threshold)))


def _b64(text: str | None, what: str) -> bytes:
    # Base64 in WS-Security may be wrapped or padded with whitespace (pitfall 19).
    compact = "".join((text or "").split())
    if not compact:
        raise As4Error(FAILED_DECRYPTION, f"{what} is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise As4Error(FAILED_DECRYPTION, f"{what} is not valid base64") from None


def _describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:#x})"


def _path(element: etree._Element) -> str:
    parts = []
    node: etree._Element | None = element
    while node is not None:
        parts.append(etree.QName(node).localname)
        node = node.getparent()
    return "/".join(reversed(parts))
