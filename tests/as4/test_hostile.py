"""Hostile and damaged input: a bad message gets an As4Error (receiver) or a report (`inspect`), a bad certificate a
Verdict, and never any other exception.

One reproducer per crash found in the AS4 core (damaged certificate tokens, a damaged SOAP namespace, a damaged
CipherReference), then property tests that flip, insert and delete bytes in a whole message and in the certificates
of its BinarySecurityTokens: the receiver and `inspect` must give the same ebMS error (or both accept), and the
validator a Verdict. The example counts are sized for CI; HOSTILE_EXAMPLES=5000 runs them harder (done once: no
failure in 2 x 5,000 and 2 x 10,000 examples).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accesspoint.core.as4 import encryption, wssec
from accesspoint.core.as4.errors import As4Error
from accesspoint.core.peppol import inspection
from accesspoint.core.peppol.inbound import InboundRefusal, open_message
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from base import safexml
from certs.devpki import DevPki, init_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pem
from certs.validation import (
    BAD_KEY_USAGE,
    BAD_SIGNATURE,
    BAD_SUBJECT,
    UNSUPPORTED_ISSUER,
    CertificateValidator,
    Purpose,
    Verdict,
)

NOW = datetime.now(UTC)  # the tests' time for what they build

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "200"))
_DER = serialization.Encoding.DER
_AP_CA_NAME = b"LOCAL DEV PEPPOL ACCESS POINT CA"


@dataclasses.dataclass(frozen=True)
class Setup:
    pki: DevPki
    sender: KeyMaterial  # POP000001, signs
    receiver: KeyMaterial  # POP000002, decrypts
    validator: CertificateValidator
    content_type: str
    body: bytes  # the whole MIME body of one message from sender to receiver

    def check_signer(self, certificate: x509.Certificate) -> Verdict:
        return self.validator.validate(certificate, Purpose.AP_SIGNING)

    def der(self, whose: str) -> bytes:
        return (self.sender if whose == "sender" else self.receiver).certificate.public_bytes(_DER)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, vectors: Path) -> Setup:
    pki = init_pki(tmp_path_factory.mktemp("hostile") / "pki", ap_seat_id="POP000001")
    leaf = issue_leaf(pki, cn="POP000002")
    sender, receiver = load_pem(pki.ap_key, pki.ap_cert), load_pem(leaf.key_pem, leaf.cert_pem)
    invoice = (vectors / "bis" / "base-example.xml").read_bytes()
    sbd = build_sbd(sbdh_from_ubl(invoice, creation=datetime.now(UTC)), invoice)
    with build_message(sbd=sbd, our_key=sender, recipient_cert=receiver.certificate, now=datetime.now(UTC)) as message:
        body = b"".join(message.chunks())
        content_type = message.content_type
    return Setup(pki, sender, receiver, CertificateValidator(pki.anchors()), content_type, body)


def _receive(setup: Setup, body: bytes) -> InboundRefusal | None:
    """The refusal `open_message` raises, or None when it accepts the message. Anything else propagates."""
    try:
        with open_message(body, setup.content_type, our_key=setup.receiver,
                          now=NOW, check_signer=setup.check_signer):
            return None
    except InboundRefusal as refusal:
        return refusal


def _inspect(setup: Setup, body: bytes) -> inspection.InspectionReport:
    return inspection.inspect_message(body, setup.content_type, keys=[setup.receiver], validator=setup.validator,
                                      at=NOW)


def _with_token(setup: Setup, whose: str, der: bytes) -> bytes:
    """The message with the BinarySecurityToken of the sender (signature) or receiver (encryption) replaced."""
    original = base64.b64encode(setup.der(whose))
    assert setup.body.count(original) == 1
    return setup.body.replace(original, base64.b64encode(der))


def _soap(body: bytes) -> bytes:
    start = body.index(b"<?xml")
    return body[start:body.index(b"</S12:Envelope>", start) + len(b"</S12:Envelope>")]


# --------------------------------------------------------------------------- certificate surgery


def _version_5(der: bytes) -> bytes:
    """The X.509 version field set to an unknown value: cryptography raises InvalidVersion (no ValueError) at load."""
    at = der.index(b"\xa0\x03\x02\x01\x02") + 4
    return der[:at] + b"\x05" + der[at + 1:]


def _boolean_string(der: bytes, text: bytes) -> bytes:
    """The name attribute holding `text` with its string tag made a BOOLEAN: the certificate loads, and reading
    that name raises (ValueError or TypeError, lazily)."""
    at = der.index(text) - 2
    return der[:at] + b"\x01" + der[at + 1:]


def _broken_issuer(der: bytes) -> bytes:
    return _boolean_string(der, _AP_CA_NAME)


def _broken_subject(der: bytes) -> bytes:
    return _boolean_string(der, b"POP00000")


def _duplicate_extension(der: bytes) -> bytes:
    """subjectKeyIdentifier renamed authorityKeyIdentifier: two AKIs, so reading the extensions raises."""
    assert der.count(b"\x06\x03\x55\x1d\x0e") == 1
    return der.replace(b"\x06\x03\x55\x1d\x0e", b"\x06\x03\x55\x1d\x23")


def _signed_by_ca(pki: DevPki, der: bytes, change: Callable[[bytes], bytes]) -> x509.Certificate:
    """The certificate with `change` applied to its TBSCertificate (same length) and signed again by the AP CA,
    i.e. a certificate our trusted CA really issued that cryptography still cannot read completely."""
    assert der[:2] == b"\x30\x82" and der[4:6] == b"\x30\x82"
    tbs_end = 8 + int.from_bytes(der[6:8], "big")
    tbs = change(der[4:tbs_end])
    assert len(tbs) == tbs_end - 4
    ca_key = serialization.load_pem_private_key(pki.ap_ca_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    signature = ca_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    assert len(signature) == 256 and der.endswith(der[-256:])
    return x509.load_der_x509_certificate(der[:4] + tbs + der[tbs_end:-256] + signature)


# --------------------------------------------------------------------------- reproducers: encryption (item 1)


@pytest.mark.parametrize("damage", [_version_5, _broken_issuer, _broken_subject, _duplicate_extension])
def test_damaged_recipient_token_is_failed_decryption(setup: Setup, damage: Callable[[bytes], bytes]) -> None:
    envelope = safexml.parse_bytes(_soap(_with_token(setup, "receiver", damage(setup.der("receiver")))))
    with pytest.raises(As4Error) as refused:
        encryption.read_encryption_header(envelope)
    assert refused.value.code == "EBMS:0102"
    assert "holds no readable X.509 certificate" in refused.value.description


def test_recipient_token_with_a_damaged_subject_is_refused_before_it_is_named(setup: Setup) -> None:
    # Decrypting for someone else words the refusal with the recipient's subject, which used to raise ValueError.
    envelope = safexml.parse_bytes(_soap(_with_token(setup, "receiver", _broken_subject(setup.der("receiver")))))
    with pytest.raises(As4Error) as refused:
        encryption.decrypt_attachments(envelope, setup.sender, {})
    assert refused.value.code == "EBMS:0102" and "subject name cannot be read" in refused.value.description


# --------------------------------------------------------------------------- reproducers: wssec (item 2)


@pytest.mark.parametrize("damage", [_version_5, _broken_issuer, _broken_subject, _duplicate_extension])
def test_damaged_signer_token_gives_a_report_not_an_exception(setup: Setup, damage: Callable[[bytes], bytes]) -> None:
    envelope = safexml.parse_bytes(_soap(_with_token(setup, "sender", damage(setup.der("sender")))))
    report = wssec.verify(envelope, {}, require=wssec.RequiredCoverage(messaging=False, body=False))
    assert report.signer is None and not report.valid
    assert report.error is not None and report.error.code == "EBMS:0101"
    assert "does not hold a readable X.509 certificate" in report.error.description


# --------------------------------------------------------------------------- reproducers: validation (item 3)


def test_certificate_with_an_unreadable_issuer_is_an_unsupported_issuer(setup: Setup) -> None:
    damaged = x509.load_der_x509_certificate(_broken_issuer(setup.der("sender")))
    verdict = setup.validator.validate(damaged, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, UNSUPPORTED_ISSUER)
    assert "issuer name cannot be read" in verdict.detail and verdict.issuer == "(unreadable)"
    assert "CN=POP000001" in verdict.subject


def test_certificate_with_an_unreadable_subject_fails_its_signature(setup: Setup) -> None:
    damaged = x509.load_der_x509_certificate(_broken_subject(setup.der("sender")))
    verdict = setup.validator.validate(damaged, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason, verdict.subject) == (False, BAD_SIGNATURE, "(unreadable)")


def test_ca_issued_certificate_with_unreadable_extensions_has_bad_key_usage(setup: Setup) -> None:
    certificate = _signed_by_ca(setup.pki, setup.der("receiver"), _duplicate_extension)
    for purpose in (Purpose.AP_SIGNING, Purpose.AP_ENCRYPTION):
        verdict = setup.validator.validate(certificate, purpose)
        assert (verdict.valid, verdict.reason) == (False, BAD_KEY_USAGE)
        assert "extensions cannot be read" in verdict.detail


def test_ca_issued_certificate_with_an_unreadable_subject_has_a_bad_subject(setup: Setup) -> None:
    certificate = _signed_by_ca(setup.pki, setup.der("receiver"), _broken_subject)
    verdict = setup.validator.validate(certificate, Purpose.AP_ENCRYPTION)
    assert (verdict.valid, verdict.reason) == (False, BAD_SUBJECT)
    assert "subject name cannot be read" in verdict.detail


# --------------------------------------------------------------------------- reproducers: inspect and inbound (4, 5)


def test_inspect_reports_a_damaged_soap_namespace(setup: Setup) -> None:
    # The lenient report still finds wsse:Security, but the encryption module's lookups refuse a non-SOAP root.
    declaration = b'xmlns:S12="http://www.w3.org/2003/05/soap-envelope"'
    body = setup.body.replace(declaration, declaration[:-2] + b'X"', 1)
    report = _inspect(setup, body)
    assert [(s.name, s.status) for s in report.steps][:5] == [
        ("transport", "ok"), ("soap", "ok"), ("signature-policy", "skipped"), ("envelope", "failed"),
        ("decryption", "failed")]
    assert report.ebms_error is not None
    refusal = _receive(setup, body)
    assert refusal is not None and refusal.code == report.ebms_error.code


@pytest.mark.parametrize("damage", [_broken_issuer, _version_5])
def test_inspect_reports_a_damaged_signer_certificate(setup: Setup, damage: Callable[[bytes], bytes]) -> None:
    body = _with_token(setup, "sender", damage(setup.der("sender")))
    report = _inspect(setup, body)
    assert not report.valid and report.signer is None
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0101"
    refusal = _receive(setup, body)
    assert refusal is not None and refusal.code == "EBMS:0101"


@pytest.mark.parametrize(("old", "new", "code"), [
    (b'CipherReference URI="cid:', b'CipherReference URI="cjd:', "EBMS:0103"),  # no cid: reference (policy)
    (b'CipherReference URI="cid:att-', b'CipherReference URI="cid:btt-', "EBMS:0102"),  # no such attachment
])
def test_damaged_cipher_reference_gets_the_same_code_from_inspect_and_receiver(
    setup: Setup, old: bytes, new: bytes, code: str
) -> None:
    assert setup.body.count(old) == 1
    body = setup.body.replace(old, new)
    envelope = safexml.parse_bytes(_soap(body))
    with pytest.raises(As4Error) as refused:
        encryption.decrypt_attachments(envelope, setup.receiver, {})
    assert refused.value.code == code  # the one source of truth
    report = _inspect(setup, body)
    assert report.ebms_error is not None and report.ebms_error.code == code
    refusal = _receive(setup, body)
    assert refusal is not None and refusal.code == code


def test_attachment_outside_every_encrypted_data_is_refused_alike(setup: Setup) -> None:
    """An EncryptedKey that names no EncryptedData, and none left: the attachment travels as if in the clear."""
    soap = _soap(setup.body)
    without = re.sub(rb"<xenc:EncryptedData .*?</xenc:EncryptedData>", b"", soap, flags=re.S)
    without = re.sub(rb"<xenc:ReferenceList>.*?</xenc:ReferenceList>", b"", without, flags=re.S)
    body = setup.body.replace(soap, without)
    refusal = _receive(setup, body)
    assert refusal is not None and refusal.code == "EBMS:0102" and "is not encrypted" in refusal.description
    report = _inspect(setup, body)
    assert report.ebms_error is not None and report.ebms_error.code == "EBMS:0102"
    assert "is not encrypted" in report.ebms_error.description


def test_untouched_message_is_accepted_and_inspects_clean(setup: Setup) -> None:
    assert _receive(setup, setup.body) is None
    assert _inspect(setup, setup.body).valid


# --------------------------------------------------------------------------- property tests (item 7)


Mutation = tuple[str, float, int]
_MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.floats(0, 1, exclude_max=True),
              st.integers(0, 255)),
    min_size=1, max_size=4,
)


def _mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    out = bytearray(data)
    for op, where, value in mutations:
        at = int(where * len(out))
        if op == "flip":
            out[at] ^= 1 << (value % 8)
        elif op == "insert":
            out.insert(at, value)
        else:
            del out[at]
    return bytes(out)


def _assert_handled(setup: Setup, body: bytes) -> None:
    """The receiver refuses with an As4Error or accepts; inspect reports; neither raises anything else, and both
    come to the same answer (inspect says which ebMS error the receiver gives)."""
    refusal = _receive(setup, body)
    report = _inspect(setup, body)
    assert report.steps
    expected = report.ebms_error.code if report.ebms_error is not None else None
    assert (refusal.code if refusal is not None else None) == expected, (refusal, list(inspection.human_lines(report)))


_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(mutations=_MUTATIONS)
def test_any_damage_to_the_message_is_refused_or_reported(setup: Setup, mutations: list[Mutation]) -> None:
    _assert_handled(setup, _mutate(setup.body, mutations))


@_SETTINGS
@given(whose=st.sampled_from(["sender", "receiver"]), mutations=_MUTATIONS)
def test_any_damage_to_a_token_certificate_is_refused_or_reported(
    setup: Setup, whose: str, mutations: list[Mutation]
) -> None:
    der = setup.der(whose)
    damaged = _mutate(der, mutations)
    _assert_handled(setup, _with_token(setup, whose, damaged))
    try:
        loaded = x509.load_der_x509_certificate(damaged)
    except (ValueError, x509.InvalidVersion):
        return
    for purpose in Purpose:
        verdict = setup.validator.validate(loaded, purpose)
        assert damaged == der or not verdict.valid, verdict
