"""WS-Security signatures: the phase4 vectors, round trips (with signxml as an independent oracle), tampering."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from accesspoint.core.as4 import messaging, ns, wssec
from accesspoint.core.as4.encryption import PlainAttachment, decrypt_attachments, encrypt_attachments
from accesspoint.core.as4.errors import FAILED_AUTHENTICATION, POLICY_NONCOMPLIANCE, As4Error
from accesspoint.core.as4.wssec import AttachmentContent, RequiredCoverage, attachment_digest, sign, verify
from base import safexml
from tests.as4._wssec_support import (
    body_of_http_dump,
    bytes_attachment,
    dummy_key,
    gzip_attachment,
    make_key,
    peppol_user_message_envelope,
    soap_part_of_mime,
    user_message_envelope,
)
from tests.as4.namespaces import NSMAP

NSMAP = {**NSMAP, "S11": ns.S11}


def _vector_bytes(vectors: Path, name: str) -> bytes:
    data = (vectors / "as4" / name).read_bytes()
    if name.endswith(".mime"):
        return soap_part_of_mime(data)
    if name.endswith(".as4in"):
        return body_of_http_dump(data)
    return data


def _expected(vectors: Path) -> dict[str, dict]:
    return json.loads((vectors / "as4" / "expected-signatures.json").read_text())


def _signed(attachments: list[AttachmentContent], key=None, **kwargs) -> bytes:
    """Sign a fresh UserMessage and serialise it once, as the sender does."""
    envelope = user_message_envelope([a.content_id for a in attachments])
    sign(envelope, key or make_key("POP000001"), attachments, **kwargs)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _verify_bytes(data: bytes, attachments: list[AttachmentContent], **kwargs) -> wssec.SignatureReport:
    require = RequiredCoverage(attachment_content_ids=[a.content_id for a in attachments])
    return verify(safexml.parse_bytes(data), {a.content_id: a for a in attachments}, require=require, **kwargs)


# --------------------------------------------------------------------------- vectors


SIGNED_VECTORS = [
    "messages/um-phase4-peppol-signed-encrypted.mime",
    "messages/receipt-phase4-2022-POP000306.as4in",
    "messages/receipt-phase4-4.0.1-PDE000576.xml",
    "messages/receipt-soap11-legacy-ph-as4.xml",
]


@pytest.mark.parametrize("name", SIGNED_VECTORS)
def test_vector_signatures_match_the_oracle(vectors: Path, name: str) -> None:
    expected = _expected(vectors)[name]
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, name)), {})
    assert report.signature_valid is expected["signature_value_valid_rsa_sha256"]
    assert report.signer_subject == expected["signer_subject"]
    states = {r.uri: r.digest_valid for r in report.references}
    assert states == {uri: {"OK": True}.get(verdict) for uri, verdict in expected["references"].items()}
    assert [r.get("URI") for r in report.signed_info_references] == list(expected["references"])


def test_phase4_user_message_without_attachment_is_not_fully_verified(vectors: Path) -> None:
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, SIGNED_VECTORS[0])), {})
    attachment = report.references[2]
    assert attachment.uri.startswith("cid:") and attachment.digest_valid is None
    assert attachment.transforms == [ns.SWA_CONTENT_SIGNATURE]
    assert report.error is not None and report.error.code == FAILED_AUTHENTICATION
    assert "not supplied" in report.error.description
    assert not report.valid
    # Messaging and Body are the real header block and Body
    assert len(report.covered_ids) == 2


def test_phase4_user_message_signer_is_the_second_bst(vectors: Path) -> None:
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, SIGNED_VECTORS[0])), {})
    # the first BST is the encryption target (a G2 certificate); the signer is the one the STR names
    assert report.signer is not None
    assert "G3" in report.signer.issuer.rfc4514_string()


@pytest.mark.parametrize("name", SIGNED_VECTORS[1:3])
def test_phase4_receipts_are_valid(vectors: Path, name: str) -> None:
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, name)), {})
    assert report.valid, report.problems
    assert report.problems == []
    assert len(report.references) == 2
    report.raise_for_error()


def test_legacy_receipt_is_valid_crypto_but_leaves_messaging_unsigned(vectors: Path) -> None:
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, SIGNED_VECTORS[3])), {})
    assert report.signature_valid
    assert [r.digest_valid for r in report.references] == [True]
    assert not report.valid
    assert report.error is not None and report.error.code == FAILED_AUTHENTICATION
    assert any("eb:Messaging" in p for p in report.problems)
    with pytest.raises(As4Error):
        report.raise_for_error()


def test_legacy_receipt_passes_when_only_body_coverage_is_required(vectors: Path) -> None:
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, SIGNED_VECTORS[3])), {},
                    require=RequiredCoverage(messaging=False))
    assert report.valid, report.problems


def test_unknown_signature_algorithm_is_rejected_before_any_crypto(vectors: Path, monkeypatch) -> None:
    def no_crypto(*_args, **_kwargs):
        pytest.fail("crypto was attempted for a signature with an unknown algorithm")

    monkeypatch.setattr(wssec, "_rsa_verify", no_crypto)
    monkeypatch.setattr(wssec, "_check_digest", no_crypto)
    monkeypatch.setattr(wssec, "attachment_digest", no_crypto)
    report = verify(safexml.parse_bytes(_vector_bytes(vectors, "messages/um-unknown-signature-algorithm.xml")), {})
    assert report.error is not None and report.error.code == FAILED_AUTHENTICATION
    assert "http://www.randomcrypt.com/random" in report.error.description
    assert not report.signature_valid and report.signer is None and report.references == []


# --------------------------------------------------------------------------- round trip


def test_sign_serialise_reparse_verify() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment])
    report = _verify_bytes(data, [attachment])
    assert report.valid, report.problems
    assert [r.digest_valid for r in report.references] == [True, True, True]
    assert report.covered_content_ids == [attachment.content_id]
    assert report.signer_subject == "CN=POP000001,C=BE"


def test_round_trip_of_a_messaging_built_user_message() -> None:
    attachment = gzip_attachment()
    envelope = peppol_user_message_envelope([attachment.content_id])
    sign(envelope, make_key("POP000001"), [attachment])
    data = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    report = _verify_bytes(data, [attachment])
    assert report.valid, report.problems
    parsed = messaging.parse_envelope(safexml.parse_bytes(data))
    assert parsed.user_message is not None
    assert report.covered_ids == [parsed.user_message.messaging_id, parsed.user_message.body_id]


def test_signed_layout_follows_phase4() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    security = root.find("S12:Header/wsse:Security", NSMAP)
    bst = security.find("wsse:BinarySecurityToken", NSMAP)
    assert bst.get(f"{{{ns.WSU}}}Id").startswith("X509-")
    assert bst.get("ValueType") == ns.BST_X509V3 and bst.get("EncodingType") == ns.BST_BASE64
    assert "\n" not in bst.text and base64.b64decode(bst.text) == make_key("POP000001").certificate.public_bytes(
        serialization.Encoding.DER)
    signature = security.find("ds:Signature", NSMAP)
    assert signature.get("Id").startswith("SIG-")
    signed_info = signature.find("ds:SignedInfo", NSMAP)
    c14n = signed_info.find("ds:CanonicalizationMethod", NSMAP)
    assert c14n.get("Algorithm") == ns.C14N_EXCL
    assert c14n.find("ec:InclusiveNamespaces", NSMAP).get("PrefixList") == "S12"
    assert signed_info.find("ds:SignatureMethod", NSMAP).get("Algorithm") == ns.RSA_SHA256
    refs = signed_info.findall("ds:Reference", NSMAP)
    messaging = root.find("S12:Header/eb:Messaging", NSMAP)
    body = root.find("S12:Body", NSMAP)
    assert [r.get("URI") for r in refs] == [f"#{messaging.get(f'{{{ns.WSU}}}Id')}",
                                            f"#{body.get(f'{{{ns.WSU}}}Id')}", f"cid:{attachment.content_id}"]
    assert refs[0].find("ds:Transforms/ds:Transform/ec:InclusiveNamespaces", NSMAP).get("PrefixList") == "S12"
    assert refs[1].find("ds:Transforms/ds:Transform/ec:InclusiveNamespaces", NSMAP) is None
    assert refs[2].find("ds:Transforms/ds:Transform", NSMAP).get("Algorithm") == ns.SWA_CONTENT_SIGNATURE
    assert all(r.find("ds:DigestMethod", NSMAP).get("Algorithm") == ns.SHA256 for r in refs)
    assert body.nsmap.get("wsu") == ns.WSU  # declared on the Body itself, like phase4
    key_info = signature.find("ds:KeyInfo", NSMAP)
    assert key_info.get("Id").startswith("KI-")
    token_reference = key_info.find("wsse:SecurityTokenReference", NSMAP)
    assert token_reference.get(f"{{{ns.WSU}}}Id").startswith("STR-")
    reference = token_reference.find("wsse:Reference", NSMAP)
    assert reference.get("URI") == f"#{bst.get(f'{{{ns.WSU}}}Id')}" and reference.get("ValueType") == ns.BST_X509V3
    assert "\n" not in signature.findtext("ds:SignatureValue", namespaces=NSMAP)


def test_sign_returns_the_references_in_the_tree() -> None:
    attachment = gzip_attachment()
    envelope = user_message_envelope([attachment.content_id])
    refs = sign(envelope, make_key("POP000001"), [attachment])
    assert [r.getparent().tag for r in refs] == [f"{{{ns.DS}}}SignedInfo"] * 3
    assert refs[2].get("URI") == f"cid:{attachment.content_id}"


def test_round_trip_with_the_dummy_ph_as4_key(vectors: Path) -> None:
    attachment = gzip_attachment()
    report = _verify_bytes(_signed([attachment], key=dummy_key(vectors)), [attachment])
    assert report.valid, report.problems
    assert report.signer_subject == "CN=ph-as4,C=AT"


def test_round_trip_with_holodeck_style_prefix_list() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment], prefix_list=("S12", "eb", "wsu"))
    report = _verify_bytes(data, [attachment])
    assert report.valid, report.problems


def test_signing_twice_is_refused() -> None:
    envelope = user_message_envelope([])
    sign(envelope, make_key("POP000001"), [])
    with pytest.raises(ValueError, match="already holds a ds:Signature"):
        sign(envelope, make_key("POP000001"), [])


def test_signing_without_messaging_is_refused() -> None:
    envelope = user_message_envelope([])
    messaging = envelope.find("S12:Header/eb:Messaging", NSMAP)
    messaging.getparent().remove(messaging)
    with pytest.raises(ValueError, match="0 eb:Messaging"):
        sign(envelope, make_key("POP000001"), [])


def test_signing_an_envelope_with_duplicate_ids_is_refused() -> None:
    envelope = user_message_envelope([])
    messaging = envelope.find("S12:Header/eb:Messaging", NSMAP)
    etree.SubElement(messaging, "{urn:x}Extra", Id=messaging.get(f"{{{ns.WSU}}}Id"))
    with pytest.raises(ValueError, match="occur on more than one element"):
        sign(envelope, make_key("POP000001"), [])


def test_envelope_with_two_bodies_is_rejected() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment]).replace(b"</S12:Envelope>", b"<S12:Body/></S12:Envelope>")
    _assert_rejected(_verify_bytes(data, [attachment]), FAILED_AUTHENTICATION, "not a SOAP envelope")


def _signxml_verify(data: bytes, attachment: AttachmentContent, cert_pem: bytes) -> None:
    with attachment.open() as stream:
        attachment_bytes = stream.read()

    def resolve(uri: str) -> bytes:
        assert uri == f"cid:{attachment.content_id}"
        return attachment_bytes

    XMLVerifier().verify(
        data, x509_cert=cert_pem.decode(), validate_schema=False, id_attribute="Id", uri_resolver=resolve,
        expect_config=SignatureConfiguration(require_x509=False, expect_references=3),
    )


def test_signxml_verifies_our_signature() -> None:
    attachment = gzip_attachment()
    key = make_key("POP000001")
    data = _signed([attachment], key=key)
    _signxml_verify(data, attachment, key.certificate.public_bytes(serialization.Encoding.PEM))


def test_signxml_verifies_our_signature_with_the_dummy_key(vectors: Path) -> None:
    attachment = gzip_attachment()
    key = dummy_key(vectors)
    data = _signed([attachment], key=key)
    _signxml_verify(data, attachment, key.certificate.public_bytes(serialization.Encoding.PEM))


def test_signxml_rejects_our_signature_after_tampering() -> None:
    attachment = gzip_attachment()
    key = make_key("POP000001")
    data = _signed([attachment], key=key).replace(b"2026-11-21T10:00:00.000Z", b"2026-11-21T10:00:01.000Z")
    with pytest.raises(Exception, match=r"(?i)digest"):
        _signxml_verify(data, attachment, key.certificate.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------------- attachment transform


def test_gzip_attachment_digest_is_over_the_raw_bytes() -> None:
    raw = gzip.compress(b"payload" * 50000, mtime=0)
    wssec_digest = attachment_digest(bytes_attachment("a@cid", raw))
    assert wssec_digest == hashlib.sha256(raw).digest()


class _GeneratedStream(io.RawIOBase):
    """`size` pseudo-random bytes produced on demand; records the largest read so tests can bound memory."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.largest_read = 0
        self.produced = hashlib.sha256()
        self._block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        self.largest_read = max(self.largest_read, n)
        data = (self._block * (n // len(self._block) + 1))[:n]
        self.remaining -= n
        self.produced.update(data)
        return data


def test_large_attachment_is_digested_in_chunks() -> None:
    stream = _GeneratedStream(100 * 1024 * 1024)
    digest = attachment_digest(AttachmentContent("big@cid", "application/gzip", lambda: stream))
    assert stream.remaining == 0
    assert digest == stream.produced.digest()
    assert stream.largest_read <= wssec.CHUNK_SIZE


def test_text_attachment_line_ends_are_normalised_across_chunks(monkeypatch) -> None:
    monkeypatch.setattr(wssec, "CHUNK_SIZE", 3)
    text = b"ab\r\ncd\ref\ngh\r\r\n\n"
    digest = attachment_digest(bytes_attachment("t@cid", text, "text/plain; charset=UTF-8"))
    assert digest == hashlib.sha256(b"ab\r\ncd\r\nef\r\ngh\r\n\r\n\r\n").digest()


def test_xml_attachment_is_exclusive_c14n_before_digest() -> None:
    xml = b"<?xml version='1.0'?>\n<a:r xmlns:a='urn:a' xmlns:b='urn:b'   x = '1'><!-- c --><a:k/></a:r>"
    digest = attachment_digest(bytes_attachment("x@cid", xml, "application/vnd.peppol+xml"))
    assert digest == hashlib.sha256(b'<a:r xmlns:a="urn:a" x="1"><a:k></a:k></a:r>').digest()


def test_attachment_found_by_percent_decoded_content_id() -> None:
    attachment = gzip_attachment("a%40b@cid")  # signed literally as cid:a%40b@cid
    data = _signed([attachment])
    decoded = AttachmentContent("a@b@cid", attachment.mime_type, attachment.open)
    report = verify(safexml.parse_bytes(data), {"a@b@cid": decoded},
                    require=RequiredCoverage(attachment_content_ids=["a@b@cid"]))
    assert report.valid, report.problems


def test_attachments_from_a_callable() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment])

    def lookup(content_id: str) -> AttachmentContent:
        return {attachment.content_id: attachment}[content_id]

    report = verify(safexml.parse_bytes(data), lookup,
                    require=RequiredCoverage(attachment_content_ids=[attachment.content_id]))
    assert report.valid, report.problems


# --------------------------------------------------------------------------- tampering


def _assert_rejected(report: wssec.SignatureReport, code: str, fragment: str) -> None:
    assert not report.valid
    assert report.error is not None and report.error.code == code
    assert any(fragment in p for p in report.problems), report.problems


def test_changed_messaging_text_is_rejected() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment]).replace(b"2026-11-21T10:00:00.000Z", b"2026-11-21T10:00:00.001Z")
    report = _verify_bytes(data, [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "digest of #phase4-msg-")
    assert report.signature_valid  # SignedInfo itself is intact


def test_changed_body_is_rejected() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment]).replace(b"/></S12:Envelope>", b">x</S12:Body></S12:Envelope>")
    assert b">x</S12:Body>" in data
    _assert_rejected(_verify_bytes(data, [attachment]), FAILED_AUTHENTICATION, "digest of #id-")


def test_changed_attachment_byte_is_rejected() -> None:
    attachment = gzip_attachment()
    data = _signed([attachment])
    with attachment.open() as stream:
        raw = bytearray(stream.read())
    raw[-5] ^= 0x01
    changed = bytes_attachment(attachment.content_id, bytes(raw))
    _assert_rejected(_verify_bytes(data, [changed]), FAILED_AUTHENTICATION, f"digest of cid:{attachment.content_id}")


def test_changed_digest_value_in_signed_info_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    digest = root.find(".//ds:SignedInfo/ds:Reference/ds:DigestValue", NSMAP)
    value = bytearray(base64.b64decode(digest.text))
    value[0] ^= 0x01
    digest.text = base64.b64encode(bytes(value)).decode()
    report = _verify_bytes(etree.tostring(root), [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "SignatureValue does not verify")
    assert not report.signature_valid


def test_swapped_bst_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment], key=make_key("POP000001")))
    bst = root.find(".//wsse:BinarySecurityToken", NSMAP)
    bst.text = base64.b64encode(make_key("POP000002").certificate.public_bytes(serialization.Encoding.DER)).decode()
    report = _verify_bytes(etree.tostring(root), [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "SignatureValue does not verify with the key of CN=POP000002")


def test_wrong_key_is_rejected() -> None:
    key_a, key_b = make_key("POP000001"), make_key("POP000002")
    attachment = gzip_attachment()
    mixed = type(key_a)(key_a.private_key, key_b.certificate)  # signed with A, BST carries B
    report = _verify_bytes(_signed([attachment], key=mixed), [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "SignatureValue does not verify")


def test_wrapped_messaging_with_duplicate_id_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    header = root.find("S12:Header", NSMAP)
    messaging = header.find("eb:Messaging", NSMAP)
    wrapper = etree.SubElement(header, "{urn:attacker}Wrapper")
    wrapper.append(copy.deepcopy(messaging))  # the signed original, hidden where nobody reads it
    messaging.find(".//eb:MessageId", NSMAP).text = "forged@attacker"
    report = _verify_bytes(etree.tostring(root), [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "occur on more than one element")
    assert report.references == []  # rejected before any digest was computed


def test_reference_to_a_messaging_copy_elsewhere_does_not_count() -> None:
    """The signed copy keeps its Id, the real header block gets a fresh one: no duplicates, but no coverage."""
    attachment = gzip_attachment()
    data = _signed([attachment]).decode()
    start = data.index("<eb:Messaging")
    end = data.index("</eb:Messaging>") + len("</eb:Messaging>")
    original = data[start:end]
    signed_id = safexml.parse_bytes(original.encode()).get(f"{{{ns.WSU}}}Id")
    forged = original.replace(signed_id, "fresh-id").replace("@test<", "@attacker<")
    # byte-level surgery keeps the copy's namespace prefixes, so its digest still matches
    attack = data[:start] + f'<x:Wrapper xmlns:x="urn:attacker">{original}</x:Wrapper>' + forged + data[end:]
    report = _verify_bytes(attack.encode(), [attachment])
    assert report.signature_valid and all(r.digest_valid for r in report.references)
    _assert_rejected(report, FAILED_AUTHENTICATION, "eb:Messaging (the one header block")


def test_unsigned_attachment_is_rejected() -> None:
    signed, unsigned = gzip_attachment(), gzip_attachment()
    envelope = user_message_envelope([signed.content_id, unsigned.content_id])
    sign(envelope, make_key("POP000001"), [signed])  # the second attachment's reference left out
    data = etree.tostring(envelope)
    _assert_rejected(_verify_bytes(data, [signed, unsigned]), FAILED_AUTHENTICATION,
                     f"attachment cid:{unsigned.content_id} is not covered")


def test_missing_body_reference_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    # removing a reference breaks the SignatureValue too; both are reported
    refs = root.findall(".//ds:SignedInfo/ds:Reference", NSMAP)
    refs[1].getparent().remove(refs[1])
    report = _verify_bytes(etree.tostring(root), [attachment])
    _assert_rejected(report, FAILED_AUTHENTICATION, "the SOAP Body is not covered")


@pytest.mark.parametrize(
    ("xpath", "attribute", "value", "fragment"),
    [
        ("ds:SignedInfo/ds:SignatureMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
         "SignatureMethod"),
        ("ds:SignedInfo/ds:CanonicalizationMethod", "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
         "CanonicalizationMethod"),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1",
         "DigestMethod"),
        ("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", "Algorithm",
         "http://www.w3.org/TR/1999/REC-xslt-19991116", "transforms"),
        ("ds:SignedInfo/ds:Reference", "URI", "", "reference URI ''"),
    ],
)
def test_disallowed_algorithms_are_rejected_before_crypto(monkeypatch, xpath, attribute, value, fragment) -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    root.find(f".//ds:Signature/{xpath}", NSMAP).set(attribute, value)

    def no_crypto(*_args, **_kwargs):
        pytest.fail("crypto was attempted despite a disallowed algorithm")

    monkeypatch.setattr(wssec, "_rsa_verify", no_crypto)
    monkeypatch.setattr(wssec, "_check_digest", no_crypto)
    _assert_rejected(_verify_bytes(etree.tostring(root), [attachment]), FAILED_AUTHENTICATION, fragment)


def _replace_token_reference(root: etree._Element, replacement: etree._Element) -> None:
    token_reference = root.find(".//ds:KeyInfo/wsse:SecurityTokenReference", NSMAP)
    token_reference.remove(token_reference.find("wsse:Reference", NSMAP))
    token_reference.append(replacement)


def test_issuer_serial_key_reference_is_policy_noncompliance() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    x509_data = etree.Element(f"{{{ns.DS}}}X509Data")
    issuer_serial = etree.SubElement(x509_data, f"{{{ns.DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{ns.DS}}}X509SerialNumber").text = "1"
    _replace_token_reference(root, x509_data)
    report = _verify_bytes(etree.tostring(root), [attachment])
    _assert_rejected(report, POLICY_NONCOMPLIANCE, "not referenced as a BinarySecurityToken")
    assert "X509Data" in report.error.description


def test_ski_key_identifier_is_policy_noncompliance() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    identifier = etree.Element(f"{{{ns.WSSE}}}KeyIdentifier", ValueType=(
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"))
    identifier.text = "AAAA"
    _replace_token_reference(root, identifier)
    _assert_rejected(_verify_bytes(etree.tostring(root), [attachment]), POLICY_NONCOMPLIANCE, "KeyIdentifier")


def test_pkipath_token_is_policy_noncompliance() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    pkipath = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"
    root.find(".//wsse:BinarySecurityToken", NSMAP).set("ValueType", pkipath)
    root.find(".//wsse:SecurityTokenReference/wsse:Reference", NSMAP).attrib.pop("ValueType")
    _assert_rejected(_verify_bytes(etree.tostring(root), [attachment]), POLICY_NONCOMPLIANCE, "X509v3")


def test_bst_outside_the_security_header_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    bst = root.find(".//wsse:Security/wsse:BinarySecurityToken", NSMAP)
    elsewhere = etree.SubElement(root.find("S12:Header", NSMAP), "{urn:other}Block")
    elsewhere.append(bst)
    _assert_rejected(_verify_bytes(etree.tostring(root), [attachment]), FAILED_AUTHENTICATION,
                     "same wsse:Security header")


def test_second_signature_is_rejected() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    security = root.find(".//wsse:Security", NSMAP)
    security.append(copy.deepcopy(security.find("ds:Signature", NSMAP)))
    _assert_rejected(_verify_bytes(etree.tostring(root), [attachment]), FAILED_AUTHENTICATION,
                     "2 ds:Signature elements")


def test_unsigned_message_is_rejected() -> None:
    envelope = user_message_envelope([])
    _assert_rejected(verify(envelope, {}), FAILED_AUTHENTICATION, "0 ds:Signature")
    _assert_rejected(verify(etree.Element("{urn:x}NotSoap"), {}), FAILED_AUTHENTICATION, "not a SOAP envelope")


def test_base64_with_line_breaks_is_accepted() -> None:
    """A signer that folds its base64 (DigestValue inside SignedInfo, SignatureValue, BST) still verifies."""
    key = make_key("POP000001")
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment], key=key))

    def fold(element: etree._Element) -> None:
        text = element.text
        element.text = "\n".join(text[i:i + 16] for i in range(0, len(text), 16)) + "\n  "

    for digest in root.iterfind(".//ds:DigestValue", NSMAP):
        fold(digest)
    signed_info = root.find(".//ds:SignedInfo", NSMAP)
    c14n = etree.tostring(signed_info, method="c14n", exclusive=True, inclusive_ns_prefixes=["S12"])
    root.find(".//ds:SignatureValue", NSMAP).text = base64.b64encode(
        key.private_key.sign(c14n, padding.PKCS1v15(), hashes.SHA256())).decode()
    fold(root.find(".//ds:SignatureValue", NSMAP))
    fold(root.find(".//wsse:BinarySecurityToken", NSMAP))
    report = _verify_bytes(etree.tostring(root), [attachment])
    assert report.valid, report.problems


def test_corrupted_certificate_in_bst_is_reported_not_raised() -> None:
    attachment = gzip_attachment()
    root = safexml.parse_bytes(_signed([attachment]))
    bst = root.find(".//wsse:BinarySecurityToken", NSMAP)
    der = bytearray(base64.b64decode(bst.text))
    der[len(der) // 3] ^= 0x20  # inside the subject/public key, so the DER may still load lazily
    bst.text = base64.b64encode(bytes(der)).decode()
    report = _verify_bytes(etree.tostring(root), [attachment])
    assert not report.valid
    assert report.error is not None and report.error.code == FAILED_AUTHENTICATION


# --------------------------------------------------------------------------- property: any single changed byte


_ATTACHMENT = gzip_attachment("prop@cid")
_SIGNED = _signed([_ATTACHMENT], key=make_key("POP000001"))
_ORIGINAL = safexml.parse_bytes(_SIGNED)


def _span(start_tag: bytes, end_tag: bytes) -> range:
    start = _SIGNED.index(start_tag)
    end = _SIGNED.index(end_tag, start) + len(end_tag) if end_tag else _SIGNED.index(b"/>", start) + 2
    return range(start, end)


# the bytes of eb:Messaging, the (empty) Body and SignedInfo as serialised by the sender
_SIGNED_POSITIONS = [
    *_span(b"<eb:Messaging", b"</eb:Messaging>"),
    *_span(b"<S12:Body", b""),
    *_span(b"<ds:SignedInfo", b"</ds:SignedInfo>"),
]


def _canonical_parts(root: etree._Element) -> tuple[bytes, ...]:
    """Messaging, Body and SignedInfo as exclusive C14N: what the signature is about."""
    def c14n(path: str, prefixes: list[str]) -> bytes:
        found = root.findall(path, NSMAP)
        return b"".join(etree.tostring(e, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
                        for e in found) + bytes([len(found)])

    return (c14n("S12:Header/eb:Messaging", ["S12"]), c14n("S12:Body", []), c14n(".//ds:SignedInfo", ["S12"]),
            etree.tostring(root.find(".//ds:SignedInfo", NSMAP)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.sampled_from(_SIGNED_POSITIONS), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_in_signed_parts_is_rejected(position: int, flip: int) -> None:
    """A byte changed in Messaging, Body or SignedInfo is either insignificant (same canonical form, still
    valid) or makes the signature invalid; never a changed message with a valid signature."""
    data = bytearray(_SIGNED)
    data[position] ^= flip
    try:
        root = safexml.parse_bytes(bytes(data))
    except safexml.XmlError:
        return  # not XML any more: rejected by the parser, before the signature
    report = verify(root, {_ATTACHMENT.content_id: _ATTACHMENT},
                    require=RequiredCoverage(attachment_content_ids=[_ATTACHMENT.content_id]))
    try:
        changed = _canonical_parts(root) != _canonical_parts(_ORIGINAL)
    except (etree.C14NError, TypeError):
        changed = True  # e.g. a namespace URI made relative, or SignedInfo renamed away
    if changed:
        assert not report.valid, f"byte {position} changed what was signed, yet the signature verified"
    else:
        assert report.valid, f"byte {position} changed nothing that was signed, yet: {report.problems}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(_SIGNED) - 1), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_anywhere_never_raises_nor_forges(position: int, flip: int) -> None:
    """Anywhere in the message (BST, KeyInfo, attributes, ...): verify reports instead of raising, and a
    valid verdict always means Messaging, Body and SignedInfo are exactly what was signed."""
    data = bytearray(_SIGNED)
    data[position] ^= flip
    try:
        root = safexml.parse_bytes(bytes(data))
    except safexml.XmlError:
        return
    report = verify(root, {_ATTACHMENT.content_id: _ATTACHMENT},
                    require=RequiredCoverage(attachment_content_ids=[_ATTACHMENT.content_id]))
    assert report.valid == (report.error is None)
    if report.valid:
        assert _canonical_parts(root) == _canonical_parts(_ORIGINAL)
    else:
        assert report.problems and report.error.code in (FAILED_AUTHENTICATION, POLICY_NONCOMPLIANCE)


def test_verify_needs_no_reserialisation_of_received_bytes() -> None:
    """Bytes with unusual but valid formatting verify as received (no normalisation step in between)."""
    attachment = gzip_attachment()
    data = _signed([attachment]).replace(b"<S12:Header>", b"<S12:Header>\n   \n")
    assert _verify_bytes(data, [attachment]).valid


# --------------------------------------------------------------------------- with the encryption layer


def test_sign_encrypt_then_decrypt_verify() -> None:
    """The Peppol order: gzip, sign, encrypt (sender); decrypt, verify over the still-gzipped bytes (receiver)."""
    sender, receiver = make_key("POP000001"), make_key("POP000002")
    gzipped = gzip.compress(b"<Invoice>1</Invoice>" * 1000, mtime=0)
    content_id = "phase4-att-0001@cid"
    envelope = user_message_envelope([content_id])
    sign(envelope, sender, [bytes_attachment(content_id, gzipped)])
    security = envelope.find("S12:Header/wsse:Security", NSMAP)
    encrypted = encrypt_attachments(security, receiver.certificate,
                                    [PlainAttachment(content_id, "application/gzip", io.BytesIO(gzipped))])
    wire = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    received = safexml.parse_bytes(wire)
    with encrypted[0].body as ciphertext:
        decrypted = decrypt_attachments(received, receiver, {content_id: ciphertext})
    with decrypted[content_id].body as body:
        attachments = {content_id: AttachmentContent.from_stream(content_id, decrypted[content_id].mime_type, body)}
        report = verify(received, attachments, require=RequiredCoverage(attachment_content_ids=[content_id]))
        assert report.valid, report.problems
        assert report.signer_subject == "CN=POP000001,C=BE"  # the signing BST, not the one the key is for
        # the decrypted body is still usable after verification (gunzip comes next in the pipeline)
        assert not body.closed
        body.seek(0)
        assert gzip.decompress(body.read()).startswith(b"<Invoice>1</Invoice>")


def test_from_stream_rewinds_for_each_read() -> None:
    stream = io.BytesIO(b"abc" * 100000)
    attachment = AttachmentContent.from_stream("s@cid", "application/gzip", stream)
    assert attachment_digest(attachment) == attachment_digest(attachment) == hashlib.sha256(b"abc" * 100000).digest()
    assert not stream.closed
