"""AS4 attachment encryption: round trips, an independent decryptor, the phase4 vector, rejection paths."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import re
import tempfile
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from accesspoint.core.as4 import encryption, ns
from accesspoint.core.as4.encryption import (
    DecryptedAttachment,
    PlainAttachment,
    decrypt_attachments,
    encrypt_attachments,
    read_encryption_header,
    unencrypted_attachments,
)
from accesspoint.core.as4.errors import As4Error
from base.safexml import parse_bytes
from certs.keystore import KeyMaterial, load_pem

# Literal URIs, written out here rather than imported, so the oracle does not share constants with the code.
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NSM = {"xenc": XENC, "xenc11": XENC11, "ds": DSIG, "wsse": WSSE,
       "S12": "http://www.w3.org/2003/05/soap-envelope"}
PHASE4_MIME = "as4/messages/um-phase4-peppol-signed-encrypted.mime"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _self_signed(cn: str, private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(private_key, hashes.SHA256())
    )


def _generated_key(cn: str) -> KeyMaterial:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyMaterial(private_key, _self_signed(cn, private_key))


@pytest.fixture(scope="module")
def alice() -> KeyMaterial:
    return _generated_key("PXX000001")


@pytest.fixture(scope="module")
def bob() -> KeyMaterial:
    return _generated_key("PXX000002")


@pytest.fixture(scope="module")
def dummy(vectors: Path) -> KeyMaterial:
    keys = vectors / "as4" / "keys"
    return load_pem(keys / "dummy-ph-as4.key.pem", keys / "dummy-ph-as4.cert.pem")


def _envelope() -> etree._Element:
    """A SOAP envelope whose wsse:Security already holds the signing BST and signature (sign-then-encrypt)."""
    return etree.fromstring(
        f'<S12:Envelope xmlns:S12="{ns.S12}"><S12:Header>'
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}" S12:mustUnderstand="true">'
        f'<wsse:BinarySecurityToken wsu:Id="X509-signer">AAAA</wsse:BinarySecurityToken>'
        f'<ds:Signature xmlns:ds="{ns.DS}" Id="SIG-1"/>'
        f'</wsse:Security></S12:Header><S12:Body xmlns:wsu="{ns.WSU}" wsu:Id="id-body"/></S12:Envelope>'.encode()
    )


def _security(envelope: etree._Element) -> etree._Element:
    return envelope.find(f"{{{ns.S12}}}Header/{{{ns.WSSE}}}Security")


def _encrypt(recipient: x509.Certificate, payloads: dict[str, bytes]) -> tuple[bytes, dict[str, bytes]]:
    """Encrypt `payloads` (content id -> gzip bytes) and return the serialised envelope and part bodies."""
    envelope = _envelope()
    plain = [PlainAttachment(cid, "application/gzip", io.BytesIO(data)) for cid, data in payloads.items()]
    result = encrypt_attachments(_security(envelope), recipient, plain)
    bodies = {}
    for item in result:
        bodies[item.content_id] = item.body.read()
        assert len(bodies[item.content_id]) == item.size
        item.body.close()
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), bodies


def _decrypt(
    xml: bytes | etree._Element, key: KeyMaterial | list[KeyMaterial], bodies: dict[str, bytes]
) -> dict[str, bytes]:
    envelope = parse_bytes(xml) if isinstance(xml, bytes) else xml
    out = decrypt_attachments(envelope, key, {cid: io.BytesIO(b) for cid, b in bodies.items()})
    return {cid: _read_and_close(item) for cid, item in out.items()}


def _read_and_close(item: DecryptedAttachment) -> bytes:
    data = item.body.read()
    assert len(data) == item.size
    item.body.close()
    return data


def _oracle_decrypt(xml: bytes, private_key: rsa.RSAPrivateKey, bodies: dict[str, bytes]) -> dict[str, bytes]:
    """Independent decryptor: lxml XPath, OAEP unwrap and one-shot AESGCM, sharing no code with the module."""
    root = etree.fromstring(xml)
    (ek,) = root.xpath("/S12:Envelope/S12:Header/wsse:Security/xenc:EncryptedKey", namespaces=NSM)
    assert ek.xpath("xenc:EncryptionMethod/@Algorithm", namespaces=NSM) == [XENC11 + "rsa-oaep"]
    assert ek.xpath("xenc:EncryptionMethod/ds:DigestMethod/@Algorithm", namespaces=NSM) == [XENC + "sha256"]
    assert ek.xpath("xenc:EncryptionMethod/xenc11:MGF/@Algorithm", namespaces=NSM) == [XENC11 + "mgf1sha256"]
    wrapped = base64.b64decode(ek.xpath("string(xenc:CipherData/xenc:CipherValue)", namespaces=NSM))
    session_key = private_key.decrypt(
        wrapped, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    assert len(session_key) == 16
    out = {}
    for uri in ek.xpath("xenc:ReferenceList/xenc:DataReference/@URI", namespaces=NSM):
        (ed,) = root.xpath(f"//xenc:EncryptedData[@Id='{uri[1:]}']", namespaces=NSM)
        assert ed.xpath("xenc:EncryptionMethod/@Algorithm", namespaces=NSM) == [XENC11 + "aes128-gcm"]
        cid = ed.xpath("string(xenc:CipherData/xenc:CipherReference/@URI)", namespaces=NSM).removeprefix("cid:")
        blob = bodies[cid]
        out[cid] = AESGCM(session_key).decrypt(blob[:12], blob[12:], None)
    return out


def _phase4_vector(vectors: Path) -> tuple[bytes, str, bytes]:
    """The SOAP part, the attachment content id and the attachment body of phase4's encrypted message."""
    raw = (vectors / PHASE4_MIME).read_bytes()
    boundary = re.search(rb'boundary="([^"]+)"', raw).group(1)
    parts = raw.split(b"\r\n--" + boundary)
    soap = parts[1].split(b"\r\n\r\n", 1)[1]
    headers, attachment = parts[2].split(b"\r\n\r\n", 1)
    content_id = re.search(rb"Content-ID: <([^>]+)>", headers).group(1).decode()
    return soap, content_id, attachment


# --- round trips -----------------------------------------------------------------------------------


def test_round_trip_with_generated_keys_two_attachments(alice: KeyMaterial) -> None:
    payloads = {"att-1@example.org": gzip.compress(b"<Invoice/>" * 500, mtime=0),
                "att-2@example.org": gzip.compress(b"second", mtime=0)}
    xml, bodies = _encrypt(alice.certificate, payloads)

    assert _decrypt(xml, alice, bodies) == payloads
    # one key per message, one IV per attachment, wire size IV + ciphertext + tag
    ivs = {body[:12] for body in bodies.values()}
    assert len(ivs) == 2
    for cid, data in payloads.items():
        assert len(bodies[cid]) == 12 + len(data) + 16
    root = parse_bytes(xml)
    assert len(root.findall(".//xenc:EncryptedKey", NSM)) == 1
    assert len(root.xpath("//xenc:EncryptedKey/xenc:ReferenceList/xenc:DataReference", namespaces=NSM)) == 2
    decrypted = decrypt_attachments(root, alice, {c: io.BytesIO(b) for c, b in bodies.items()})
    assert {d.mime_type for d in decrypted.values()} == {"application/gzip"}


def test_round_trip_with_dummy_phase4_key(dummy: KeyMaterial) -> None:
    payload = gzip.compress(b"<StandardBusinessDocument/>", mtime=0)
    xml, bodies = _encrypt(dummy.certificate, {"phase4-att-1@cid": payload})
    assert _decrypt(xml, dummy, bodies) == {"phase4-att-1@cid": payload}


CHUNK = encryption.CHUNK


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
@pytest.mark.parametrize("spill_threshold", [0, 1 << 20])
def test_round_trip_across_chunk_boundaries(alice: KeyMaterial, size: int, spill_threshold: int) -> None:
    payload = random.Random(size).randbytes(size)
    envelope = _envelope()
    (enc,) = encrypt_attachments(_security(envelope), alice.certificate,
                                 [PlainAttachment("a@x", "application/gzip", io.BytesIO(payload))],
                                 spill_threshold=spill_threshold)
    out = decrypt_attachments(envelope, alice, {"a@x": enc.body}, spill_threshold=spill_threshold)
    assert _read_and_close(out["a@x"]) == payload


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300), data=st.data())
def test_any_flipped_ciphertext_bit_is_rejected(alice: KeyMaterial, payload: bytes, data: st.DataObject) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": payload})
    body = bytearray(bodies["a@x"])
    position = data.draw(st.integers(0, len(body) - 1), label="position")
    body[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    _expect("EBMS:0102", "integrity check", lambda: _decrypt(xml, alice, {"a@x": bytes(body)}))


def test_empty_attachment_round_trips(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"empty@x": b""})
    assert len(bodies["empty@x"]) == 28
    assert _decrypt(xml, alice, bodies) == {"empty@x": b""}


def test_independent_oracle_decrypts_our_output(alice: KeyMaterial, dummy: KeyMaterial) -> None:
    for key in (alice, dummy):
        payloads = {"a@x": gzip.compress(random.Random(1).randbytes(70_000), mtime=0), "b@x": b"\x1f\x8b tiny"}
        xml, bodies = _encrypt(key.certificate, payloads)
        assert _oracle_decrypt(xml, key.private_key, bodies) == payloads


def _libxmlsec_decrypt(xml: bytes, key: KeyMaterial, content_id: str, body: bytes) -> bytes:
    """libxmlsec (python-xmlsec) unwraps our EncryptedKey, reading the OAEP parameters from our XML, and
    decrypts the part body as the CipherValue of a stand-alone EncryptedData with our EncryptionMethod."""
    root = etree.fromstring(xml)
    (ek,) = root.xpath("//xenc:EncryptedKey", namespaces=NSM)
    key_ctx = xmlsec.EncryptionContext()
    pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    key_ctx.key = xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM)
    session_key = key_ctx.decrypt(etree.fromstring(etree.tostring(ek)))
    (ed,) = root.xpath(f"//xenc:EncryptedData[.//xenc:CipherReference/@URI='cid:{content_id}']", namespaces=NSM)
    standalone = etree.Element(f"{{{XENC}}}EncryptedData", nsmap={"xenc": XENC})
    standalone.append(etree.fromstring(etree.tostring(ed.find("xenc:EncryptionMethod", NSM))))
    cipher_value = etree.SubElement(etree.SubElement(standalone, f"{{{XENC}}}CipherData"), f"{{{XENC}}}CipherValue")
    cipher_value.text = base64.b64encode(body).decode()
    data_ctx = xmlsec.EncryptionContext()
    data_ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session_key)
    return data_ctx.decrypt(standalone)


def test_libxmlsec_decrypts_our_output(alice: KeyMaterial, dummy: KeyMaterial) -> None:
    for key in (alice, dummy):
        payload = gzip.compress(random.Random(3).randbytes(50_000), mtime=0)
        xml, bodies = _encrypt(key.certificate, {"a@x": payload, "b@x": b"\x1f\x8b other"})
        assert _libxmlsec_decrypt(xml, key, "a@x", bodies["a@x"]) == payload
        assert _libxmlsec_decrypt(xml, key, "b@x", bodies["b@x"]) == b"\x1f\x8b other"


def test_libxmlsec_oracle_reads_the_oaep_parameters(alice: KeyMaterial) -> None:
    """The oracle is not vacuous: claiming SHA-1 in the XML makes libxmlsec's unwrap fail."""
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = etree.fromstring(xml)
    root.xpath("//xenc:EncryptedKey//ds:DigestMethod", namespaces=NSM)[0].set("Algorithm", DSIG + "sha1")
    with pytest.raises(xmlsec.Error):
        _libxmlsec_decrypt(etree.tostring(root), alice, "a@x", bodies["a@x"])


def test_our_decrypt_reads_what_the_oracle_style_sender_writes(alice: KeyMaterial) -> None:
    """The other direction: a message encrypted one-shot with AESGCM is decrypted by the streaming code."""
    xml, _ = _encrypt(alice.certificate, {"a@x": b"placeholder"})
    root = parse_bytes(xml)
    session_key = AESGCM.generate_key(bit_length=128)
    wrapped = alice.certificate.public_key().encrypt(
        session_key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    root.xpath("//xenc:CipherValue", namespaces=NSM)[0].text = base64.b64encode(wrapped).decode()
    payload = random.Random(2).randbytes(200_001)
    iv = bytes(range(12))
    assert _decrypt(root, alice, {"a@x": iv + AESGCM(session_key).encrypt(iv, payload, None)}) == {"a@x": payload}


def test_base64_with_line_breaks_is_accepted(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    cipher_value = root.xpath("//xenc:CipherValue", namespaces=NSM)[0]
    text = cipher_value.text
    cipher_value.text = "\n" + "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n  "
    assert _decrypt(root, alice, bodies) == {"a@x": b"payload"}


def test_percent_encoded_cipher_reference_resolves(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    root.xpath("//xenc:CipherReference", namespaces=NSM)[0].set("URI", "cid:a%40x")
    assert _decrypt(root, alice, bodies) == {"a@x": b"payload"}
    assert unencrypted_attachments(root, ["a@x"]) == []


# --- layout ----------------------------------------------------------------------------------------


def test_encryption_elements_are_prepended_to_the_signed_header(alice: KeyMaterial) -> None:
    envelope = _envelope()
    security = _security(envelope)
    signed_part = [etree.tostring(child) for child in security]
    encrypt_attachments(security, alice.certificate, [
        PlainAttachment("a@x", "application/gzip", io.BytesIO(b"1")),
        PlainAttachment("b@x", "application/gzip", io.BytesIO(b"2")),
    ])
    names = [etree.QName(child).localname for child in security]
    assert names == ["BinarySecurityToken", "EncryptedKey", "EncryptedData", "EncryptedData",
                     "BinarySecurityToken", "Signature"]
    assert [etree.tostring(child) for child in security[4:]] == signed_part
    bst, ek = security[0], security[1]
    assert x509.load_der_x509_certificate(base64.b64decode(bst.text)) == alice.certificate
    assert "\n" not in bst.text and "\n" not in ek.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NSM)
    assert ek.xpath("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference/@URI", namespaces=NSM) == [
        "#" + bst.get(f"{{{ns.WSU}}}Id")
    ]
    assert ek.xpath("xenc:ReferenceList/xenc:DataReference/@URI", namespaces=NSM) == [
        "#" + security[2].get("Id"), "#" + security[3].get("Id")
    ]
    assert [ed.xpath("string(.//xenc:CipherReference/@URI)", namespaces=NSM) for ed in security[2:4]] == [
        "cid:a@x", "cid:b@x"
    ]


def _shape(element: etree._Element) -> tuple:
    """Element names, attributes (uuids normalised), where prefixes are declared, whether text is present."""
    parent = element.getparent()
    inherited = set(parent.nsmap.items()) if parent is not None else set()
    declared = sorted(set(element.nsmap.items()) - inherited)
    attrs = [(name, UUID.sub("<uuid>", value)) for name, value in element.attrib.items()]
    has_text = bool((element.text or "").strip())
    return element.tag, attrs, declared, has_text, [_shape(child) for child in element]


def test_structure_matches_phase4_vector(vectors: Path, alice: KeyMaterial) -> None:
    soap, content_id, _ = _phase4_vector(vectors)
    theirs = parse_bytes(soap)
    ours = parse_bytes(soap)
    security = _security(ours)
    for child in list(security)[:3]:  # phase4's BST, EncryptedKey and EncryptedData; the signature stays
        security.remove(child)
    signature_part = [etree.tostring(child) for child in security]

    encrypt_attachments(security, alice.certificate, [
        PlainAttachment(content_id, "application/gzip", io.BytesIO(b"\x1f\x8b payload"))
    ])

    expected = [_shape(child) for child in list(_security(theirs))[:3]]
    assert [_shape(child) for child in list(security)[:3]] == expected
    assert [etree.tostring(child) for child in security[3:]] == signature_part


# --- the phase4 vector -----------------------------------------------------------------------------


def test_phase4_vector_header_is_read_as_index_states(vectors: Path) -> None:
    soap, content_id, attachment = _phase4_vector(vectors)
    header = read_encryption_header(parse_bytes(soap))
    (key,) = header.keys
    assert key.algorithm == "http://www.w3.org/2009/xmlenc11#rsa-oaep"
    assert key.oaep_digest == "http://www.w3.org/2001/04/xmlenc#sha256"
    assert key.mgf == "http://www.w3.org/2009/xmlenc11#mgf1sha256"
    assert not key.has_oaep_params
    assert len(key.cipher_value) == 256  # RSA 2048
    cn = key.recipient.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issuer = key.recipient.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert (cn, issuer) == ("POP000306", "PEPPOL ACCESS POINT TEST CA - G2")
    (data,) = header.data
    assert data.algorithm == "http://www.w3.org/2009/xmlenc11#aes128-gcm"
    assert data.mime_type == "application/gzip"
    assert data.type == "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only"
    assert data.cipher_reference == f"cid:{content_id}"
    assert data.transforms == (
        "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform",
    )
    assert key.data_references == (data.id,) and data.key_id == key.id
    assert len(attachment) == 2263


def test_phase4_vector_is_not_encrypted_for_us(vectors: Path, dummy: KeyMaterial) -> None:
    soap, content_id, attachment = _phase4_vector(vectors)
    with pytest.raises(As4Error) as caught:
        decrypt_attachments(parse_bytes(soap), dummy, {content_id: io.BytesIO(attachment)})
    assert caught.value.code == "EBMS:0102"
    assert "encrypted for certificate" in caught.value.description
    assert "POP000306" in caught.value.description and "not ours" in caught.value.description
    assert "ph-as4" in caught.value.description


def test_phase4_vector_attachment_counts_as_encrypted(vectors: Path) -> None:
    soap, content_id, _ = _phase4_vector(vectors)
    assert unencrypted_attachments(parse_bytes(soap), [content_id, "other@cid"]) == ["other@cid"]


# --- rejection paths -------------------------------------------------------------------------------


def _expect(code: str, words: str, action: Callable[[], object]) -> As4Error:
    with pytest.raises(As4Error) as caught:
        action()
    assert caught.value.code == code, caught.value
    assert words in caught.value.description, caught.value.description
    return caught.value


def test_wrong_key_is_not_ours(alice: KeyMaterial, bob: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"secret"})
    error = _expect("EBMS:0102", "not ours", lambda: _decrypt(xml, bob, bodies))
    assert "PXX000001" in error.description and "PXX000002" in error.description


def test_old_and_new_key_during_renewal(alice: KeyMaterial, bob: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"for the old certificate"})
    assert _decrypt(xml, [bob, alice], bodies) == {"a@x": b"for the old certificate"}
    error = _expect("EBMS:0102", "not ours", lambda: _decrypt(xml, [bob], bodies))
    assert "PXX000002" in error.description


def test_key_wrapped_for_another_certificate_behind_our_bst(alice: KeyMaterial, bob: KeyMaterial) -> None:
    """A BST naming us while the key was wrapped for someone else: the unwrap fails, and the answer must not
    differ from a GCM failure (no padding oracle)."""
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"secret"})
    root = parse_bytes(xml)
    bst = root.xpath("//wsse:BinarySecurityToken", namespaces=NSM)[0]
    bst.text = base64.b64encode(bob.certificate.public_bytes(Encoding.DER)).decode()
    _expect("EBMS:0102", "integrity check", lambda: _decrypt(root, bob, bodies))


@pytest.mark.parametrize("key_length", [15, 32])
def test_wrapped_key_of_wrong_length_fails_like_gcm(alice: KeyMaterial, key_length: int) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"secret"})
    root = parse_bytes(xml)
    wrapped = alice.certificate.public_key().encrypt(
        bytes(key_length), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    root.xpath("//xenc:CipherValue", namespaces=NSM)[0].text = base64.b64encode(wrapped).decode()
    _expect("EBMS:0102", "integrity check", lambda: _decrypt(root, alice, bodies))


@pytest.mark.parametrize(
    ("where", "position"),
    [("ciphertext", 20), ("iv", 0), ("iv", 11), ("tag", -1), ("tag", -16)],
)
def test_tampered_attachment_fails_gcm(alice: KeyMaterial, where: str, position: int) -> None:
    payload = gzip.compress(b"<Invoice>1000.00</Invoice>" * 10, mtime=0)
    xml, bodies = _encrypt(alice.certificate, {"a@x": payload})
    body = bytearray(bodies["a@x"])
    body[position] ^= 0x01
    _expect("EBMS:0102", "integrity check", lambda: _decrypt(xml, alice, {"a@x": bytes(body)}))


def test_one_tampered_attachment_of_two_yields_no_plaintext(
    alice: KeyMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The good first attachment is decrypted before the second fails: its plaintext must be discarded too."""
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"first", "b@x": b"second"})
    bodies["b@x"] = bodies["b@x"][:-1] + bytes([bodies["b@x"][-1] ^ 0x80])
    created: list[tempfile.SpooledTemporaryFile] = []

    class Tracked(tempfile.SpooledTemporaryFile):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(encryption, "SpooledTemporaryFile", Tracked)
    _expect("EBMS:0102", "b@x", lambda: _decrypt(xml, alice, bodies))
    assert len(created) == 2
    assert all(spool.closed for spool in created)


@pytest.mark.parametrize("length", [0, 12, 27])
def test_truncated_attachment(alice: KeyMaterial, length: int) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"some payload"})
    _expect("EBMS:0102", "at least 28", lambda: _decrypt(xml, alice, {"a@x": bodies["a@x"][:length]}))


def test_cut_attachment_fails_gcm(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"some longer payload" * 10})
    _expect("EBMS:0102", "integrity check", lambda: _decrypt(xml, alice, {"a@x": bodies["a@x"][:-5]}))


def test_missing_attachment(alice: KeyMaterial) -> None:
    xml, _ = _encrypt(alice.certificate, {"a@x": b"payload"})
    _expect("EBMS:0102", "cid:a@x, which is not in the message",
            lambda: _decrypt(xml, alice, {"other@x": b"\0" * 40}))


def _set_attr(xpath: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        root.xpath(xpath, namespaces=NSM)[0].set(name, value)
    return change


def _remove(xpath: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = root.xpath(xpath, namespaces=NSM)[0]
        element.getparent().remove(element)
    return change


def _add_oaep_params(root: etree._Element) -> None:
    method = root.xpath("//xenc:EncryptedKey/xenc:EncryptionMethod", namespaces=NSM)[0]
    etree.SubElement(method, f"{{{XENC}}}OAEPparams").text = "bGFiZWw="


EK_METHOD = "//xenc:EncryptedKey/xenc:EncryptionMethod"
ED = "//xenc:EncryptedData"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set_attr(EK_METHOD, "Algorithm", XENC + "rsa-oaep-mgf1p"), "SHA-1"),
        (_set_attr(EK_METHOD, "Algorithm", XENC + "rsa-1_5"), "is not allowed"),
        (_remove(EK_METHOD + "/ds:DigestMethod"), "SHA-1 default"),
        (_set_attr(EK_METHOD + "/ds:DigestMethod", "Algorithm", DSIG + "sha1"), "OAEP digest"),
        (_remove(EK_METHOD + "/xenc11:MGF"), "MGF1-SHA-1 default"),
        (_set_attr(EK_METHOD + "/xenc11:MGF", "Algorithm", XENC11 + "mgf1sha1"), "mask generation"),
        (_add_oaep_params, "OAEPparams"),
        (_set_attr(ED + "/xenc:EncryptionMethod", "Algorithm", XENC11 + "aes256-gcm"), "aes256-gcm is not allowed"),
        (_set_attr(ED + "/xenc:EncryptionMethod", "Algorithm", XENC + "aes128-cbc"), "aes128-cbc is not allowed"),
        (_set_attr(ED, "Type", "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete"),
         "Attachment-Complete"),
        (_remove(ED + "//xenc:Transforms"), "transforms"),
    ],
    ids=["rsa-oaep-mgf1p", "rsa-1_5", "no-oaep-digest", "sha1-digest", "no-mgf", "mgf1sha1", "oaep-params",
         "aes256-gcm", "aes128-cbc", "attachment-complete", "no-ciphertext-transform"],
)
def test_algorithms_outside_the_peppol_suite_are_policy_errors(
    alice: KeyMaterial, change: Callable[[etree._Element], None], words: str
) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    change(root)
    _expect("EBMS:0103", words, lambda: _decrypt(root, alice, bodies))


def _key_identifier_instead_of_reference(root: etree._Element) -> None:
    str_ = root.xpath("//xenc:EncryptedKey/ds:KeyInfo/wsse:SecurityTokenReference", namespaces=NSM)[0]
    str_.remove(str_[0])
    etree.SubElement(str_, f"{{{WSSE}}}KeyIdentifier").text = "c2tp"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_key_identifier_instead_of_reference, "identified by KeyIdentifier"),
        (_set_attr("//xenc:EncryptedKey//wsse:Reference", "URI", "#id-body"), "not to a BinarySecurityToken"),
        (_set_attr("//wsse:BinarySecurityToken[1]", "ValueType",
                   "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"),
         "X509v3"),
    ],
    ids=["key-identifier", "reference-to-body", "pkipath"],
)
def test_key_reference_must_be_a_bst(
    alice: KeyMaterial, change: Callable[[etree._Element], None], words: str
) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    change(root)
    _expect("EBMS:0103", words, lambda: _decrypt(root, alice, bodies))


@pytest.mark.parametrize("target", ["wsse:Reference", "xenc:DataReference"])
def test_duplicate_ids_are_rejected(alice: KeyMaterial, target: str) -> None:
    """A second element claiming the Id of the recipient BST or of an EncryptedData (wrapping attempt)."""
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    claimed = root.xpath(f"//xenc:EncryptedKey//{target}/@URI", namespaces=NSM)[0][1:]
    root.xpath("//S12:Body", namespaces=NSM)[0].set("Id", claimed)
    _expect("EBMS:0103", "occurs 2 times", lambda: _decrypt(root, alice, bodies))


def test_encrypted_data_outside_the_header_is_rejected(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    ed = root.xpath(ED, namespaces=NSM)[0]
    root.xpath("//S12:Body", namespaces=NSM)[0].append(ed)
    _expect("EBMS:0103", "Envelope/Body/EncryptedData", lambda: _decrypt(root, alice, bodies))


def test_attachment_encrypted_twice_is_rejected(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"one", "b@x": b"two"})
    root = parse_bytes(xml)
    root.xpath(ED + "[2]//xenc:CipherReference", namespaces=NSM)[0].set("URI", "cid:a@x")
    _expect("EBMS:0103", "encrypted twice", lambda: _decrypt(root, alice, bodies))


def test_unencrypted_message_is_a_decryption_failure(alice: KeyMaterial) -> None:
    _expect("EBMS:0102", "not encrypted", lambda: _decrypt(etree.tostring(_envelope()), alice, {}))
    no_header = f'<S12:Envelope xmlns:S12="{ns.S12}"><S12:Header/><S12:Body/></S12:Envelope>'.encode()
    _expect("EBMS:0102", "no wsse:Security header", lambda: _decrypt(no_header, alice, {}))


def test_dangling_references_are_decryption_failures(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    root.xpath(ED + "//wsse:Reference", namespaces=NSM)[0].set("URI", "#EK-missing")
    _expect("EBMS:0102", "EK-missing", lambda: _decrypt(root, alice, bodies))
    root = parse_bytes(xml)
    root.xpath("//xenc:DataReference", namespaces=NSM)[0].set("URI", "#ED-missing")
    _expect("EBMS:0102", "ED-missing", lambda: _decrypt(root, alice, bodies))


def test_literal_cid_match_wins_and_covers_only_that_attachment(alice: KeyMaterial) -> None:
    """`cid:a%40x` names the part literally called `a%40x` when there is one, so `a@x` stays uncovered."""
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    root.xpath("//xenc:CipherReference", namespaces=NSM)[0].set("URI", "cid:a%40x")
    assert unencrypted_attachments(root, ["a@x", "a%40x"]) == ["a@x"]
    assert _decrypt(root, alice, {"a%40x": bodies["a@x"], "a@x": b"plain, not encrypted"}) == {"a%40x": b"payload"}


def test_encrypted_data_without_key_info_uses_the_key_that_lists_it(alice: KeyMaterial) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    _remove(ED + "/ds:KeyInfo")(root)
    assert _decrypt(root, alice, bodies) == {"a@x": b"payload"}
    _remove("//xenc:ReferenceList")(root)
    _expect("EBMS:0102", "no KeyInfo reference", lambda: _decrypt(root, alice, bodies))


def _set_text(xpath: str, text: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        root.xpath(xpath, namespaces=NSM)[0].text = text
    return change


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set_text("//xenc:CipherValue", "not*base64"), "CipherValue is not valid base64"),
        (_set_text("//xenc:CipherValue", " "), "CipherValue is empty"),
        (_set_text("//wsse:BinarySecurityToken[1]", "AAAA"), "no readable X.509 certificate"),
        (_remove("//xenc:EncryptedKey/xenc:CipherData"), "no xenc:CipherData/xenc:CipherValue"),
        (_set_attr("//xenc:EncryptedKey//wsse:Reference", "URI", "#nowhere"), "resolves to no element"),
    ],
    ids=["cipher-value-not-base64", "cipher-value-empty", "bst-not-a-certificate", "no-cipher-data",
         "bst-reference-dangling"],
)
def test_unreadable_key_parts_are_decryption_failures(
    alice: KeyMaterial, change: Callable[[etree._Element], None], words: str
) -> None:
    xml, bodies = _encrypt(alice.certificate, {"a@x": b"payload"})
    root = parse_bytes(xml)
    change(root)
    _expect("EBMS:0102", words, lambda: _decrypt(root, alice, bodies))


def test_unencrypted_attachments_lists_the_uncovered_ones(alice: KeyMaterial) -> None:
    xml, _ = _encrypt(alice.certificate, {"a@x": b"1", "c@x": b"3"})
    root = parse_bytes(xml)
    assert unencrypted_attachments(root, ["a@x", "b@x", "c@x", "d@x"]) == ["b@x", "d@x"]
    assert unencrypted_attachments(_envelope(), ["a@x"]) == ["a@x"]
    no_header = f'<S12:Envelope xmlns:S12="{ns.S12}"><S12:Header/><S12:Body/></S12:Envelope>'.encode()
    assert unencrypted_attachments(parse_bytes(no_header), ["a@x"]) == ["a@x"]


# --- sender-side input checks ---------------------------------------------------------------------


@pytest.mark.parametrize("content_id", ["<a@x>", "", "a b@x", "a%20b@x", "ä@x"])
def test_sender_refuses_content_ids_that_need_escaping(alice: KeyMaterial, content_id: str) -> None:
    with pytest.raises(ValueError, match="URI-safe"):
        encrypt_attachments(_security(_envelope()), alice.certificate,
                            [PlainAttachment(content_id, "application/gzip", io.BytesIO(b"x"))])


def test_sender_refuses_non_rsa_recipient() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed("PXX000003", ec_key)
    security = _security(_envelope())
    _expect("EBMS:0103", "no RSA key", lambda: encrypt_attachments(
        security, cert, [PlainAttachment("a@x", "application/gzip", io.BytesIO(b"x"))]))
    assert len(security) == 2  # header untouched


def test_sender_needs_security_element_and_attachments(alice: KeyMaterial) -> None:
    envelope = _envelope()
    with pytest.raises(ValueError, match="wsse:Security"):
        encrypt_attachments(envelope, alice.certificate, [PlainAttachment("a@x", "application/gzip", io.BytesIO())])
    with pytest.raises(ValueError, match="no attachments"):
        encrypt_attachments(_security(envelope), alice.certificate, [])
    encrypt_attachments(_security(envelope), alice.certificate,
                        [PlainAttachment("a@x", "application/gzip", io.BytesIO(b"x"))])
    with pytest.raises(ValueError, match="already holds an xenc:EncryptedKey"):
        encrypt_attachments(_security(envelope), alice.certificate,
                            [PlainAttachment("a@x", "application/gzip", io.BytesIO(b"x"))])
    with pytest.raises(ValueError, match="given twice"):
        encrypt_attachments(_security(_envelope()), alice.certificate, [
            PlainAttachment("a@x", "application/gzip", io.BytesIO()),
            PlainAttachment("a@x", "application/gzip", io.BytesIO()),
        ])


# --- streaming -------------------------------------------------------------------------------------


class _GeneratedStream(io.RawIOBase):
    """`total` pseudo-random bytes produced on demand, hashed as they are read; never held whole."""

    def __init__(self, total: int, seed: int) -> None:
        self._left = total
        self._random = random.Random(seed)
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        data = self._random.randbytes(n)
        buffer[:n] = data
        self.sha256.update(data)
        self._left -= n
        return n


def test_100_mb_round_trip_streams(alice: KeyMaterial) -> None:
    total = 100 * 1024 * 1024
    source = _GeneratedStream(total, seed=7)
    envelope = _envelope()
    tracemalloc.start()
    try:
        (encrypted,) = encrypt_attachments(
            _security(envelope), alice.certificate, [PlainAttachment("big@x", "application/gzip", source)]
        )
        assert encrypted.size == total + 28
        decrypted = decrypt_attachments(envelope, alice, {"big@x": encrypted.body})["big@x"]
        encrypted.body.close()
        digest = hashlib.sha256()
        while chunk := decrypted.body.read(1 << 16):
            digest.update(chunk)
        decrypted.body.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decrypted.size == total
    assert digest.digest() == source.sha256.digest()
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
