"""AP certificates that the trusted AP CA issued but the Peppol certificate policy does not allow: an extended key
usage without clientAuth/serverAuth (codeSigning alone), an RSA key under 2048 bits (EC under 256), a missing
digitalSignature or keyEncipherment usage. A message signed with one is refused with EBMS:0101 FailedAuthentication,
the code of every other signer-certificate failure (untrusted, expired, revoked), nothing is stored, and the gateway
goes on accepting valid messages. On the sending side a receipt signed with one is no evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID as Eku

from accesspoint.adapters.transport import HttpAnswer
from accesspoint.core.as4.errors import INVALID_RECEIPT
from accesspoint.core.as4.receipts import sign_receipt
from accesspoint.core.peppol.outbound import build_message
from accesspoint.flows.sending import Failure, Verified, judge_answer
from certs.keystore import KeyMaterial
from certs.validation import BAD_KEY_USAGE, WEAK_KEY, Purpose
from tests.hostile.as4_support import receipted, refused_with, still_accepts_valid_traffic
from tests.hostile.certificate_support import ap_key_material, issue_certificate
from tests.receiving.conftest import Keys, Receiver

SENDER = "POP000021"


@pytest.mark.parametrize(("changes", "reason"), [
    pytest.param({"extended": [Eku.CODE_SIGNING]}, "the extended key usage allows only codeSigning", id="codeSigning"),
    pytest.param({"extended": [Eku.EMAIL_PROTECTION, Eku.TIME_STAMPING]}, "allows only emailProtection, timeStamping",
                 id="emailProtection-timeStamping"),
    pytest.param({"rsa_bits": 1024}, "the RSA key has 1024 bits", id="rsa-1024"),
    pytest.param({"rsa_bits": 2047}, "the RSA key has 2047 bits", id="rsa-2047"),
    pytest.param({"usages": ("digital_signature",)}, "lacks keyEncipherment", id="no-keyEncipherment"),
    pytest.param({"usages": ("digital_signature", "data_encipherment")}, "lacks keyEncipherment",
                 id="dataEncipherment-instead"),
])
def test_a_message_signed_with_a_certificate_outside_the_policy_is_ebms_0101(
        rx: Receiver, sbd: bytes, invoice: bytes, changes: dict, reason: str) -> None:  # type: ignore[type-arg]
    signer = ap_key_material(rx.keys.pki_dir, SENDER, **{"extended": [Eku.CLIENT_AUTH], **changes})
    with rx.build(sbd, sender=signer) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0101")
    assert reason in str(error) and SENDER in str(error)
    still_accepts_valid_traffic(rx, invoice)


@pytest.mark.parametrize("extended", [
    pytest.param([Eku.SERVER_AUTH], id="serverAuth"),
    pytest.param([Eku.CODE_SIGNING, Eku.CLIENT_AUTH], id="codeSigning-and-clientAuth"),
    pytest.param(None, id="no-extended-key-usage"),  # RFC 5280: then the key usage alone governs
])
def test_a_certificate_inside_the_policy_is_accepted(rx: Receiver, sbd: bytes,
                                                     extended: list[x509.ObjectIdentifier] | None) -> None:
    signer = ap_key_material(rx.keys.pki_dir, SENDER, extended=extended, rsa_bits=3072)
    with rx.build(sbd, sender=signer) as message:
        receipted(rx, rx.send(message), message.message_id, message.sent_references)
    assert len(rx.messages()) == 1


@pytest.mark.parametrize(("curve", "valid"), [(ec.SECP192R1(), False), (ec.SECP256R1(), True),
                                              (ec.SECP384R1(), True)])
def test_ec_keys_need_256_bits(rx: Receiver, curve: ec.EllipticCurve, valid: bool) -> None:
    # AS4 signs with RSA, so an EC certificate is judged by the validator alone, for both AP purposes.
    _, certificate = issue_certificate(rx.keys.pki_dir, SENDER, key=ec.generate_private_key(curve),
                                       extended=[Eku.CLIENT_AUTH])
    for purpose in (Purpose.AP_SIGNING, Purpose.AP_ENCRYPTION):
        verdict = rx.gateway.validator.validate(certificate, purpose)
        assert (verdict.valid, verdict.reason) == ((True, None) if valid else (False, WEAK_KEY)), verdict.detail


def test_the_policy_is_checked_for_encryption_certificates_too(rx: Receiver) -> None:
    # The receiver's certificate from an SMP is judged for ap-encryption before anything is encrypted for it.
    code_signing = ap_key_material(rx.keys.pki_dir, SENDER, extended=[Eku.CODE_SIGNING])
    verdict = rx.gateway.validator.validate(code_signing.certificate, Purpose.AP_ENCRYPTION)
    assert (verdict.valid, verdict.reason) == (False, BAD_KEY_USAGE)


def _answer_signed_by(peer: KeyMaterial, sender: KeyMaterial, sbd: bytes, rx: Receiver) -> Verified | Failure:
    """Send to `peer` (build only) and judge a receipt that `peer` signed, as the sending flow does."""
    now = datetime.now(UTC)
    with build_message(sbd=sbd, our_key=sender, recipient_cert=peer.certificate, now=now) as message:
        receipt = sign_receipt(message.sent_references, message.message_id, peer, now=now)
        answer = HttpAnswer(200, "application/soap+xml", receipt, 0.1)
        return judge_answer(answer, message.message_id, message.sent_references, peer.certificate,
                            lambda cert: rx.gateway.validator.validate(cert, Purpose.AP_SIGNING, now))


def test_a_receipt_signed_with_a_certificate_outside_the_policy_is_no_evidence(rx: Receiver, keys: Keys,
                                                                               sbd: bytes) -> None:
    weak = ap_key_material(rx.keys.pki_dir, SENDER, rsa_bits=1024, extended=[Eku.CLIENT_AUTH])
    result = _answer_signed_by(weak, keys.sender, sbd, rx)
    assert isinstance(result, Failure) and result.code == INVALID_RECEIPT, result
    assert "1024 bits" in result.reason
    good = ap_key_material(rx.keys.pki_dir, SENDER, extended=[Eku.CLIENT_AUTH])
    assert isinstance(_answer_signed_by(good, keys.sender, sbd, rx), Verified)
