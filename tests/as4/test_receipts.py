"""Non-repudiation receipts: signing ours, checking theirs (phase4 vectors and our own round trips)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from accesspoint.core.as4 import messaging, ns
from accesspoint.core.as4.errors import INVALID_RECEIPT
from accesspoint.core.as4.receipts import nri_reference_mismatch, sign_receipt, verify_receipt
from accesspoint.core.as4.wssec import RequiredCoverage, sign, verify
from base import safexml
from certs.keystore import KeyMaterial
from tests.as4._wssec_support import (
    body_of_http_dump,
    dummy_key,
    gzip_attachment,
    make_key,
    peppol_user_message_envelope,
)
from tests.as4.namespaces import NSMAP

NRI_PATH = "S12:Header/eb:Messaging/eb:SignalMessage/eb:Receipt/ebbp:NonRepudiationInformation"

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _exchange(receiver_key: KeyMaterial | None = None) -> tuple[str, list[etree._Element], bytes]:
    """Sender signs a UserMessage; receiver parses and verifies the bytes and signs a receipt for them.

    Returns our MessageId, the references we signed, and the receipt bytes.
    """
    attachment = gzip_attachment()
    envelope = peppol_user_message_envelope([attachment.content_id])
    sent_references = sign(envelope, make_key("POP000001"), [attachment])
    received = messaging.parse_envelope_bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    assert received.user_message is not None
    report = verify(received.envelope, {attachment.content_id: attachment},
                    require=RequiredCoverage(attachment_content_ids=[attachment.content_id]))
    report.raise_for_error()
    message_id = received.user_message.message_id
    receipt = sign_receipt(report.signed_info_references, message_id, receiver_key or make_key("POP000002"), now=NOW)
    return message_id, sent_references, receipt


def _nri_refs(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{NRI_PATH}/ebbp:MessagePartNRInformation/ds:Reference", NSMAP)


def _assert_invalid(verdict, fragment: str) -> None:
    assert not verdict.valid
    assert verdict.error_code == INVALID_RECEIPT
    assert any(fragment in p for p in verdict.problems), verdict.problems


# --------------------------------------------------------------------------- our own receipts


def test_signed_receipt_verifies_for_the_sender() -> None:
    message_id, sent, receipt = _exchange()
    verdict = verify_receipt(receipt, sent_message_id=message_id, sent_references=sent)
    assert verdict.valid, verdict.problems
    assert verdict.error_code is None and verdict.problems == []
    assert verdict.ref_to_message_id == message_id
    assert verdict.signer_subject == "CN=POP000002,C=BE"
    assert [r.get("URI") for r in verdict.nri_references] == [r.get("URI") for r in sent]


def test_receipt_layout() -> None:
    message_id, sent, receipt = _exchange()
    assert receipt.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = safexml.parse_bytes(receipt)
    signal = root.find("S12:Header/eb:Messaging/eb:SignalMessage", NSMAP)
    assert signal.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=NSMAP) == message_id
    assert signal.findtext("eb:MessageInfo/eb:MessageId", namespaces=NSMAP) != message_id
    refs = _nri_refs(root)
    assert [r.get("URI") for r in refs] == [r.get("URI") for r in sent]
    # copied verbatim: same canonical form as the references in the UserMessage's SignedInfo
    assert [etree.tostring(r, method="c14n", exclusive=True) for r in refs] == [
        etree.tostring(r, method="c14n", exclusive=True) for r in safexml.parse_bytes(
            etree.tostring(sent[0].getroottree())).findall(".//ds:SignedInfo/ds:Reference", NSMAP)]
    # the receipt signs its own Messaging and Body only, and is not encrypted
    signed_uris = [r.get("URI") for r in root.findall(".//ds:SignedInfo/ds:Reference", NSMAP)]
    assert len(signed_uris) == 2 and all(u.startswith("#") for u in signed_uris)
    assert root.find(".//{http://www.w3.org/2001/04/xmlenc#}EncryptedKey") is None


def test_signxml_verifies_our_receipt() -> None:
    _message_id, _sent, receipt = _exchange()
    cert = make_key("POP000002").certificate.public_bytes(serialization.Encoding.PEM).decode()
    verified = XMLVerifier().verify(receipt, x509_cert=cert, validate_schema=False, id_attribute="Id",
                                    expect_config=SignatureConfiguration(require_x509=False, expect_references=2))
    assert len(verified) == 2


def test_receipt_signed_with_the_dummy_key_verifies(vectors: Path) -> None:
    message_id, sent, receipt = _exchange(receiver_key=dummy_key(vectors))
    verdict = verify_receipt(receipt, sent_message_id=message_id, sent_references=sent)
    assert verdict.valid, verdict.problems
    assert verdict.signer_subject == "CN=ph-as4,C=AT"


def test_wrong_ref_to_message_id_is_invalid() -> None:
    _message_id, sent, receipt = _exchange()
    verdict = verify_receipt(receipt, sent_message_id="another@sender", sent_references=sent)
    _assert_invalid(verdict, "is not the MessageId we sent ('another@sender')")


def _receipt_for(refs: list[etree._Element], message_id: str, key: KeyMaterial | None = None) -> bytes:
    return sign_receipt(refs, message_id, key or make_key("POP000002"), now=NOW)


def _copies(sent: list[etree._Element]) -> list[etree._Element]:
    return [copy.deepcopy(r) for r in sent]


def test_missing_nri_reference_is_invalid() -> None:
    message_id, sent, _ = _exchange()
    verdict = verify_receipt(_receipt_for(_copies(sent)[:2], message_id), sent_message_id=message_id,
                             sent_references=sent)
    assert verdict.signature is not None and verdict.signature.valid  # a well-signed receipt, wrong content
    _assert_invalid(verdict, "holds 2 references, but we signed 3")
    _assert_invalid(verdict, f"does not acknowledge our reference {sent[2].get('URI')!r}")


def test_changed_nri_digest_is_invalid() -> None:
    message_id, sent, _ = _exchange()
    refs = _copies(sent)
    digest = refs[2].find("ds:DigestValue", NSMAP)
    value = bytearray(base64.b64decode(digest.text))
    value[-1] ^= 0x01
    digest.text = base64.b64encode(bytes(value)).decode()
    verdict = verify_receipt(_receipt_for(refs, message_id), sent_message_id=message_id, sent_references=sent)
    _assert_invalid(verdict, f"{sent[2].get('URI')}: DigestValue differs")


def test_changed_nri_digest_method_and_transforms_are_invalid() -> None:
    message_id, sent, _ = _exchange()
    refs = _copies(sent)
    refs[0].find("ds:DigestMethod", NSMAP).set("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha512")
    refs[1].find("ds:Transforms/ds:Transform", NSMAP).set("Algorithm", ns.SWA_CONTENT_SIGNATURE)
    verdict = verify_receipt(_receipt_for(refs, message_id), sent_message_id=message_id, sent_references=sent)
    _assert_invalid(verdict, "DigestMethod 'http://www.w3.org/2001/04/xmlenc#sha512' differs")
    _assert_invalid(verdict, "Transform algorithms")


def test_extra_nri_reference_is_invalid() -> None:
    message_id, sent, _ = _exchange()
    extra = copy.deepcopy(sent[2])
    extra.set("URI", "cid:never-sent@cid")
    verdict = verify_receipt(_receipt_for([*_copies(sent), extra], message_id), sent_message_id=message_id,
                             sent_references=sent)
    _assert_invalid(verdict, "holds 4 references, but we signed 3")
    _assert_invalid(verdict, "acknowledges 'cid:never-sent@cid', which we did not sign")


def test_prefix_list_and_base64_whitespace_do_not_matter() -> None:
    message_id, sent, _ = _exchange()
    refs = _copies(sent)
    refs[0].find("ds:Transforms/ds:Transform/ec:InclusiveNamespaces", NSMAP).set("PrefixList", "S12 eb xsd")
    digest = refs[1].find("ds:DigestValue", NSMAP)
    digest.text = f"\n  {digest.text[:10]}\n{digest.text[10:]}  \n"
    verdict = verify_receipt(_receipt_for(refs, message_id), sent_message_id=message_id, sent_references=sent)
    assert verdict.valid, verdict.problems


def test_receipt_signed_by_another_key_than_its_bst_is_invalid() -> None:
    message_id, sent, _ = _exchange()
    mixed = KeyMaterial(make_key("POP000003").private_key, make_key("POP000002").certificate)
    verdict = verify_receipt(_receipt_for(_copies(sent), message_id, key=mixed), sent_message_id=message_id,
                             sent_references=sent)
    _assert_invalid(verdict, "SignatureValue does not verify with the key of CN=POP000002")


def test_tampered_receipt_is_invalid() -> None:
    message_id, sent, receipt = _exchange()
    forged = receipt.replace(message_id.encode(), b"forged@x")
    verdict = verify_receipt(forged, sent_message_id="forged@x", sent_references=sent)
    _assert_invalid(verdict, "receipt signature: digest of #msg-")


def test_unsigned_receipt_is_invalid() -> None:
    message_id, sent, receipt = _exchange()
    root = safexml.parse_bytes(receipt)
    security = root.find("S12:Header/wsse:Security", NSMAP)
    security.getparent().remove(security)
    verdict = verify_receipt(root, sent_message_id=message_id, sent_references=sent)
    _assert_invalid(verdict, "receipt signature: the SOAP Header holds 0 wsse:Security headers")


def test_sign_receipt_refuses_nonsense() -> None:
    key = make_key("POP000002")
    with pytest.raises(ValueError, match="RefToMessageId"):
        sign_receipt([etree.Element(f"{{{ns.DS}}}Reference")], "", key, now=NOW)
    with pytest.raises(ValueError, match="needs the ds:Reference"):
        sign_receipt([], "m@x", key, now=NOW)
    with pytest.raises(ValueError, match="must be ds:Reference"):
        sign_receipt([etree.Element("Reference")], "m@x", key, now=NOW)


def test_not_xml_is_invalid() -> None:
    _assert_invalid(verify_receipt(b"Bad Request: no", sent_message_id="m@x", sent_references=[]), "not XML")


# --------------------------------------------------------------------------- vectors


def _expected(vectors: Path, name: str) -> dict:
    return json.loads((vectors / "as4" / "expected-signatures.json").read_text())[name]


@pytest.mark.parametrize(
    "name", ["messages/receipt-phase4-4.0.1-PDE000576.xml", "messages/receipt-phase4-2022-POP000306.as4in"]
)
def test_phase4_receipts(vectors: Path, name: str) -> None:
    """We never had phase4's originals; the sent references are rebuilt from the NRI (PrefixList dropped)."""
    expected = _expected(vectors, name)
    data = (vectors / "as4" / name).read_bytes()
    data = body_of_http_dump(data) if name.endswith(".as4in") else data
    root = safexml.parse_bytes(data)
    sent = _copies(_nri_refs(root))
    for reference in sent:
        for inclusive in reference.iterfind(".//ec:InclusiveNamespaces", NSMAP):
            inclusive.getparent().remove(inclusive)
    verdict = verify_receipt(data, sent_message_id=expected["ebms_RefToMessageId"], sent_references=sent)
    assert verdict.valid, verdict.problems
    assert verdict.signer_subject == expected["signer_subject"]
    assert verdict.message_id == expected["ebms_MessageId"]
    assert [r.get("URI") for r in verdict.nri_references] == expected["nri_reference_uris"]
    assert verdict.signature is not None and len(verdict.signature.references) == 2


def test_phase4_receipt_tolerates_the_phase4_marker(vectors: Path) -> None:
    data = (vectors / "as4" / "messages/receipt-phase4-4.0.1-PDE000576.xml").read_bytes()
    root = safexml.parse_bytes(data)
    assert root.find(".//eb:Receipt/{urn:fdc:com.helger.phase4:ns:info}phase4", NSMAP) is not None
    verdict = verify_receipt(root, sent_message_id=_expected(vectors, "messages/receipt-phase4-4.0.1-PDE000576.xml")[
        "ebms_RefToMessageId"], sent_references=_copies(_nri_refs(root)))
    assert verdict.valid, verdict.problems


def test_phase4_receipt_against_other_references_is_invalid(vectors: Path) -> None:
    name = "messages/receipt-phase4-4.0.1-PDE000576.xml"
    _message_id, sent, _ = _exchange()
    verdict = verify_receipt((vectors / "as4" / name).read_bytes(),
                             sent_message_id=_expected(vectors, name)["ebms_RefToMessageId"], sent_references=sent)
    _assert_invalid(verdict, "which we did not sign")
    assert verdict.signature is not None and verdict.signature.valid


def test_legacy_soap11_receipt_is_invalid(vectors: Path) -> None:
    name = "messages/receipt-soap11-legacy-ph-as4.xml"
    expected = _expected(vectors, name)
    verdict = verify_receipt((vectors / "as4" / name).read_bytes(), sent_message_id=expected["ebms_RefToMessageId"],
                             sent_references=[])
    _assert_invalid(verdict, "SOAP 1.1")
    _assert_invalid(verdict, "eb:Messaging (the one header block")
    _assert_invalid(verdict, "no ebbp:NonRepudiationInformation")
    assert verdict.signer_subject == expected["signer_subject"]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("messages/error-EBMS0001-unsigned.xml", "EBMS:0001"),
        ("messages/error-EBMS0103-with-soap-fault.xml", "EBMS:0103"),
        ("messages/error-no-RefToMessageId.xml", "EBMS:0001"),
    ],
)
def test_error_signal_is_not_a_receipt(vectors: Path, name: str, code: str) -> None:
    verdict = verify_receipt((vectors / "as4" / name).read_bytes(), sent_message_id="m@x", sent_references=[])
    _assert_invalid(verdict, "answered with an ebMS Error signal, not a Receipt")
    assert code in verdict.problems[-1]


def test_nri_fragment_digest_whitespace_is_ignored(vectors: Path) -> None:
    fragment = safexml.parse_bytes((vectors / "as4" / "messages/nri-fragment.xml").read_bytes())
    received = fragment.findall(".//ds:Reference", NSMAP)
    assert received
    assert any(r.findtext("ds:DigestValue", namespaces=NSMAP) != r.findtext("ds:DigestValue", namespaces=NSMAP).strip()
               for r in received)  # the vector really has whitespace in a DigestValue
    for reference in received:
        sent = copy.deepcopy(reference)
        sent.find("ds:DigestValue", NSMAP).text = "".join(sent.findtext("ds:DigestValue", namespaces=NSMAP).split())
        assert nri_reference_mismatch(reference, sent) is None


def test_user_message_instead_of_receipt_is_invalid() -> None:
    attachment = gzip_attachment()
    envelope = peppol_user_message_envelope([attachment.content_id])
    sent = sign(envelope, make_key("POP000001"), [attachment])
    verdict = verify_receipt(etree.tostring(envelope), sent_message_id="m@x", sent_references=sent)
    _assert_invalid(verdict, "not a Receipt")


def test_unreadable_signal_is_invalid() -> None:
    message_id, sent, receipt = _exchange()
    root = safexml.parse_bytes(receipt)
    info = root.find("S12:Header/eb:Messaging/eb:SignalMessage/eb:MessageInfo", NSMAP)
    info.remove(info.find("eb:MessageId", NSMAP))
    verdict = verify_receipt(root, sent_message_id=message_id, sent_references=sent)
    _assert_invalid(verdict, "not a readable ebMS signal: eb:MessageId")
