"""POST /as4 through the Flask test client: acceptance, storage, duplicates, and every refusal with its code.

Every refusal also asserts that nothing was stored: no Message row, no Event, no blob file.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from accesspoint.core.as4 import messaging, mime, ns, wssec
from accesspoint.core.as4.messaging import Participant
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.outbound import OutgoingMessage, build_message, seal, user_message_for
from accesspoint.core.sbdh import Sbdh, build_sbd, iter_business_document, locate_business_document, sbdh_from_ubl
from accesspoint.core.sbdh.model import UBL_CBC
from accesspoint.flows import receiving
from accesspoint.flows.webhooks import INBOUND_RECEIVED
from accesspoint.store.models import Event, MessageState, WebhookDelivery, WebhookSubscription
from certs.keystore import KeyMaterial
from tests.receiving.conftest import CREDIT_NOTE_ONLY, Receiver, ReceiverFactory

NOW = datetime.now(UTC)  # the tests' time for what they build


def error_of(response) -> messaging.ErrorSignal:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.data[:300]
    assert response.content_type.startswith("application/soap+xml")
    parsed = messaging.parse_envelope_bytes(response.data)
    assert parsed.error is not None, response.data[:500]
    return parsed.error


def refused_with(rx: Receiver, response, code: str, detail: str | None = None) -> messaging.ErrorSignal:  # type: ignore[no-untyped-def]
    error = error_of(response)
    assert error.codes == (code,), str(error)
    if detail is not None:
        assert error.has_detail(detail), str(error)
    rx.assert_nothing_stored()
    return error


def sealed(rx: Receiver, sbdh: Sbdh, sbd: bytes, signer: KeyMaterial | None = None, **changes) -> OutgoingMessage:  # type: ignore[no-untyped-def]
    """A correctly signed message whose eb:UserMessage is changed after deriving it from the SBDH."""
    signer = signer or rx.keys.sender
    user_message = user_message_for(sbdh, from_party=signer.subject_cn, to_party=rx.gateway.seat_id,
                                    content_id=mime.new_content_id(), domain="sender.example", now=datetime.now(UTC))
    user_message = dataclasses.replace(user_message, **changes)
    return seal(user_message, io.BytesIO(sbd), sbdh, our_key=signer, recipient_cert=rx.certificate)


# --------------------------------------------------------------------------- accepted


def test_message_is_stored_then_receipted(rx: Receiver, sbd: bytes, sbdh: Sbdh) -> None:
    with rx.build(sbd) as message:
        response = rx.send(message)
        verdict = verify_receipt(response.data, sent_message_id=message.message_id,
                                 sent_references=message.sent_references)
    assert response.status_code == 200 and response.content_type.startswith("application/soap+xml")
    assert verdict.valid, verdict.problems
    assert verdict.signer is not None and verdict.signer.subject == rx.certificate.subject

    [stored] = rx.messages()
    assert stored.state == MessageState.NEW and stored.direction == "inbound"
    assert stored.as4_message_id == message.message_id
    assert stored.receiver == "iso6523-actorid-upis::0002:FR23342"
    assert stored.sender == "iso6523-actorid-upis::0088:9482348239847239874"
    assert stored.document_type == sbdh.document_type.uri and stored.process == sbdh.process.uri
    assert stored.peer_ap_cn == "POP000002" and stored.country_c1 == "NO"
    assert stored.sbdh_instance_id == sbdh.instance_identifier and not stored.sbdh_instance_reused
    assert stored.payload_size == len(sbd) and stored.payload_sha256 == hashlib.sha256(sbd).hexdigest()
    # filled at receive time: the size of what the inbox serves as the document
    with rx.gateway.blobs.open(stored.blob_key) as blob:
        span = locate_business_document(blob)
        served = b"".join(iter_business_document(blob, span))
    assert stored.document_size == len(served) > 0
    # and the business document's own ID (cbc:ID), to find the message by its invoice number
    assert stored.document_id == etree.fromstring(served).findtext(f"{{{UBL_CBC}}}ID") is not None
    with rx.gateway.blobs.open(stored.blob_key) as blob:
        assert blob.read() == sbd
    with rx.gateway.read() as session:
        receipt = session.get(type(stored), stored.id).receipt
        assert receipt.raw == response.data  # the stored receipt is byte for byte what was sent
        assert receipt.ref_to_message_id == message.message_id
        assert receipt.as4_message_id == messaging.parse_envelope_bytes(response.data).receipt.message_id
        [event] = session.query(Event).all()
    assert event.type == INBOUND_RECEIVED and event.message_id == stored.id
    assert event.organisation_id == stored.organisation_id is not None
    assert event.data["as4_message_id"] == message.message_id
    assert event.data["document_id"] == stored.document_id


def test_webhook_delivery_is_queued_with_the_message(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    organisation_id = rx.seed()
    with rx.gateway.read() as session:
        session.add(WebhookSubscription(organisation_id=organisation_id, url="http://127.0.0.1:9/hook", secret="s",
                                        events=[INBOUND_RECEIVED]))
    with rx.build(sbd) as message:
        rx.send(message)
    with rx.gateway.read() as session:
        [delivery] = session.scalars(select(WebhookDelivery)).all()
        [event] = session.scalars(select(Event)).all()
    assert delivery.event_id == event.id and delivery.state == "pending"


def test_participant_value_matches_case_insensitively(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    rx.seed("0002:fr23342")
    with rx.build(sbd) as message:
        assert messaging.parse_envelope_bytes(rx.send(message).data).kind == "receipt"
    assert len(rx.messages()) == 1


def test_get_is_405(rx: Receiver) -> None:
    response = rx.client.get("/as4")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_ping_gets_a_receipt_and_nothing_is_stored(rx: Receiver) -> None:
    participant = Participant("iso6523-actorid-upis", "0088:7300010000001")
    ping = messaging.new_user_message(
        domain="sender.example", from_party="POP000002", to_party=rx.gateway.seat_id, service=ns.TEST_SERVICE,
        service_type=None, action=ns.TEST_ACTION, original_sender=participant, final_recipient=participant,
        parts=[], now=datetime.now(UTC))
    envelope = messaging.build_user_message(ping)
    wssec.sign(envelope, rx.keys.sender, [])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), [])
    response = rx.post(b"".join(chunks), content_type)
    assert messaging.parse_envelope_bytes(response.data).kind == "receipt"
    rx.assert_nothing_stored()


def test_failure_while_storing_is_500_and_leaves_nothing_behind(rx: Receiver, sbd: bytes,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault of ours is a transport-level 500 (the sender retries the same MessageId), never an ebMS error, and the
    blob already written is removed again."""
    def database_down(*args: object) -> None:
        raise OSError("database unavailable")

    monkeypatch.setattr(receiving, "_store", database_down)
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
        response = rx.post(body, message.content_type)
    assert response.status_code == 500 and response.content_type.startswith("text/plain")
    rx.assert_nothing_stored()
    monkeypatch.undo()
    assert messaging.parse_envelope_bytes(rx.post(body, message.content_type).data).kind == "receipt"
    assert len(rx.messages()) == 1


# --------------------------------------------------------------------------- duplicates


def test_identical_repeat_gets_the_original_receipt_and_stores_nothing_new(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        first = rx.send(message)
        second = rx.send(message)
    assert messaging.parse_envelope_bytes(first.data).kind == "receipt"
    assert second.status_code == 200 and second.data == first.data
    assert len(rx.messages()) == 1 and rx.event_count() == 1 and len(rx.blob_files()) == 1


def test_reused_message_id_with_other_content_is_ebms_4001(rx: Receiver, sbd: bytes, invoice: bytes) -> None:
    with rx.build(sbd) as message:
        original = b"".join(message.chunks())
        accepted = rx.post(original, message.content_type)
    other_sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=NOW), invoice)  # another InstanceIdentifier
    with rx.build(other_sbd, message_id=message.message_id) as reuse:
        response = rx.send(reuse)
    error = error_of(response)
    assert error.codes == ("EBMS:4001",) and message.message_id in str(error)
    assert error.ref_to_message_id == message.message_id
    assert len(rx.messages()) == 1 and rx.event_count() == 1 and len(rx.blob_files()) == 1
    assert rx.post(original, message.content_type).data == accepted.data  # the original still gets its receipt


def test_same_sbd_rebuilt_under_the_same_message_id_is_not_identical(rx: Receiver, sbd: bytes) -> None:
    """A new signature over a new eb:Messaging (new timestamp) is other signed content, even with the same SBD."""
    with rx.build(sbd) as message:
        rx.send(message)
    with rx.build(sbd, message_id=message.message_id) as rebuilt:
        error = error_of(rx.send(rebuilt))
    assert error.codes == ("EBMS:4001",) and "signed content differs" in str(error)
    assert len(rx.messages()) == 1


def test_racing_identical_requests_store_once_and_share_the_receipt(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
    start = threading.Barrier(4)
    answers: list[bytes] = []
    lock = threading.Lock()

    def post() -> None:
        client = rx.client.application.test_client()
        start.wait()
        response = client.post("/as4", data=body, headers={"Content-Type": message.content_type})
        with lock:
            answers.append(response.data)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 4 and len(set(answers)) == 1
    assert messaging.parse_envelope_bytes(answers[0]).kind == "receipt"
    assert len(rx.messages()) == 1 and rx.event_count() == 1 and len(rx.blob_files()) == 1


def test_loser_of_a_race_answers_with_the_winners_receipt(rx: Receiver, sbd: bytes,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The duplicate check passed while another request with this MessageId was still storing: the unique
    constraint refuses our insert, our blob is removed and the winner's receipt goes out."""
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
    winner = rx.post(body, message.content_type)
    real = receiving.inbound_by_as4_id
    calls: list[str] = []

    def not_yet_committed(session, as4_message_id):  # type: ignore[no-untyped-def]
        calls.append(as4_message_id)
        return None if len(calls) == 1 else real(session, as4_message_id)

    monkeypatch.setattr(receiving, "inbound_by_as4_id", not_yet_committed)
    loser = rx.post(body, message.content_type)
    assert len(calls) == 2  # the check before storing, then the look-up of the winner after the refused insert
    assert loser.status_code == 200 and loser.data == winner.data
    assert len(rx.messages()) == 1 and rx.event_count() == 1 and len(rx.blob_files()) == 1


def test_store_duplicates_and_races_on_sqlite_and_postgresql(make_receiver: ReceiverFactory, database_url: str,
                                                             sbd: bytes, invoice: bytes) -> None:
    rx = make_receiver(database_url)
    rx.seed()
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
    answers: list[bytes] = []
    start = threading.Barrier(3)

    def post() -> None:
        client = rx.client.application.test_client()
        start.wait()
        answers.append(client.post("/as4", data=body, headers={"Content-Type": message.content_type}).data)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 3 and len(set(answers)) == 1
    assert messaging.parse_envelope_bytes(answers[0]).kind == "receipt"
    with rx.build(build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=NOW), invoice),
                  message_id=message.message_id) as reuse:
        assert error_of(rx.send(reuse)).codes == ("EBMS:4001",)
    with rx.build(sbd) as same_instance:
        rx.send(same_instance)
    first, second = rx.messages()
    assert second.sbdh_instance_reused and second.duplicate_of == first.id
    assert rx.event_count() == 2 and len(rx.blob_files()) == 2


def test_reused_sbdh_instance_identifier_is_stored_and_flagged(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as first, rx.build(sbd) as second:  # two AS4 messages carrying the very same SBD
        assert messaging.parse_envelope_bytes(rx.send(first).data).kind == "receipt"
        assert messaging.parse_envelope_bytes(rx.send(second).data).kind == "receipt"
    original, repeat = rx.messages()
    assert not original.sbdh_instance_reused and original.duplicate_of is None
    assert repeat.sbdh_instance_reused and repeat.duplicate_of == original.id
    assert rx.event_count() == 2


def test_same_instance_identifier_from_another_sender_is_not_flagged(rx: Receiver, sbdh: Sbdh, invoice: bytes) -> None:
    other_sender = dataclasses.replace(sbdh, sender=type(sbdh.sender).parse("0088:7300010000001"))
    for header in (sbdh, other_sender):
        with rx.build(build_sbd(header, invoice)) as message:
            assert messaging.parse_envelope_bytes(rx.send(message).data).kind == "receipt"
    assert [m.sbdh_instance_reused for m in rx.messages()] == [False, False]


# --------------------------------------------------------------------------- not serviced


def test_unknown_participant_is_not_serviced(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    rx.seed("0002:FR99999")
    with rx.build(sbd) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004", "PEPPOL:NOT_SERVICED")
    assert error.ref_to_message_id == message.message_id


def test_participant_with_receiving_disabled_is_not_serviced(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    rx.seed(enabled=False)
    with rx.build(sbd) as message:
        refused_with(rx, rx.send(message), "EBMS:0004", "PEPPOL:NOT_SERVICED")


def test_document_type_not_registered_is_not_serviced(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    rx.seed(document_types=CREDIT_NOTE_ONLY)
    with rx.build(sbd) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004", "PEPPOL:NOT_SERVICED")
    assert "Invoice-2" in str(error)


def test_error_signal_is_signed_by_us(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver()
    with rx.build(sbd) as message:
        response = rx.send(message)
    report = wssec.verify(messaging.parse_envelope_bytes(response.data).envelope, {})
    assert report.valid and report.signer is not None and report.signer.subject == rx.certificate.subject


# --------------------------------------------------------------------------- signer, crypto, header


def test_signer_from_another_pki_is_ebms_0101(rx: Receiver, sbd: bytes, sbdh: Sbdh) -> None:
    with sealed(rx, sbdh, sbd, signer=rx.keys.stranger) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0101")
    assert "unsupported-issuer" in str(error) or "issuer" in str(error)


def test_expired_signer_is_ebms_0101(rx: Receiver, sbd: bytes, sbdh: Sbdh) -> None:
    with sealed(rx, sbdh, sbd, signer=rx.keys.expired) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0101")
    assert "expired" in str(error)


def test_from_party_other_than_the_signer_is_ebms_0101(rx: Receiver, sbd: bytes, sbdh: Sbdh) -> None:
    with sealed(rx, sbdh, sbd, from_party="POP000003") as message:  # signed by POP000002
        error = refused_with(rx, rx.send(message), "EBMS:0101")
    assert "POP000003" in str(error)


def test_tampered_header_is_ebms_0101(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        conversation = message.user_message.conversation_id.encode()
        body = b"".join(message.chunks()).replace(conversation, b"x" + conversation[1:])
        refused_with(rx, rx.post(body, message.content_type), "EBMS:0101")


def test_tampered_ciphertext_is_ebms_0102(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        body = bytearray(b"".join(message.chunks()))
        body[-len(f"\r\n--{message.boundary}--\r\n") - 20] ^= 0x01
        refused_with(rx, rx.post(bytes(body), message.content_type), "EBMS:0102")


def test_message_encrypted_for_another_ap_is_ebms_0102(rx: Receiver, sbd: bytes) -> None:
    with build_message(sbd=sbd, our_key=rx.keys.sender, recipient_cert=rx.keys.other_ap.certificate,
                       to_party=rx.gateway.seat_id, now=datetime.now(UTC)) as message:
        refused_with(rx, rx.send(message), "EBMS:0102")


def test_unencrypted_attachment_is_ebms_0102(rx: Receiver, sbd: bytes, sbdh: Sbdh) -> None:
    content_id = mime.new_content_id()
    um = user_message_for(sbdh, from_party="POP000002", to_party=rx.gateway.seat_id, content_id=content_id,
                          domain="sender.example", now=datetime.now(UTC))
    envelope = messaging.build_user_message(um)
    compressed = gzip.compress(sbd, mtime=0)
    wssec.sign(envelope, rx.keys.sender, [wssec.AttachmentContent(content_id, "application/gzip",
                                                                  lambda: io.BytesIO(compressed))])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
                                              [mime.OutgoingAttachment(content_id, compressed)])
    refused_with(rx, rx.post(b"".join(chunks), content_type), "EBMS:0102")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"final_recipient": Participant("iso6523-actorid-upis", "0002:FR99999")}, "finalRecipient"),
        ({"original_sender": Participant("iso6523-actorid-upis", "0088:7300010000001")}, "originalSender"),
        ({"service": "urn:fdc:peppol.eu:2017:poacc:selfbilling:01:1.0"}, "eb:Service"),
    ],
)
def test_sbdh_disagreeing_with_the_ebms_header_is_ebms_0004(rx: Receiver, sbd: bytes, sbdh: Sbdh, changes: dict,
                                                             named: str) -> None:
    with sealed(rx, sbdh, sbd, **changes) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004")
    assert named in str(error)


def _wrapped(message: OutgoingMessage, keep_id: bool) -> bytes:
    """Signature wrapping: the signed eb:Messaging moved into an attacker element, a forged one in its place (with
    the signed wsu:Id again, or a fresh one)."""
    data = message.envelope_xml.decode()
    start = data.index("<eb:Messaging")
    end = data.index("</eb:Messaging>") + len("</eb:Messaging>")
    original = data[start:end]
    signed_id = re.search(r'\bwsu:Id="([^"]+)"', original[: original.index(">")]).group(1)  # type: ignore[union-attr]
    forged = original.replace("0002:FR23342", "0002:FR23343")
    if not keep_id:
        forged = forged.replace(signed_id, "fresh-id")
    attack = data[:start] + f'<x:Wrapper xmlns:x="urn:attacker">{original}</x:Wrapper>' + forged + data[end:]
    return attack.encode()


@pytest.mark.parametrize("keep_id", [True, False], ids=["duplicate-id", "fresh-id"])
def test_signature_wrapping_is_ebms_0101(rx: Receiver, sbd: bytes, keep_id: bool) -> None:
    with rx.build(sbd) as message:
        attacked = dataclasses.replace(message, envelope_xml=_wrapped(message, keep_id))
        response = rx.post(b"".join(attacked.chunks()), message.content_type)
    error = refused_with(rx, response, "EBMS:0101")
    assert ("more than one element" if keep_id else "eb:Messaging") in str(error)


# --------------------------------------------------------------------------- hostile input


def test_gzip_bomb_is_ebms_0303(make_receiver: ReceiverFactory, sbdh: Sbdh) -> None:
    rx = make_receiver(as4__max_compression_ratio="100")
    rx.seed()
    bomb = b"<x>" + b"\0" * (8 << 20)  # 8 MiB of zeros gzip to ~8 KiB
    with sealed(rx, sbdh, bomb) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0303")
    assert "expands" in str(error)


def test_payload_over_the_size_limit_is_ebms_0303(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver(as4__max_payload_bytes=str(len(sbd) - 1))
    rx.seed()
    with rx.build(sbd) as message:
        refused_with(rx, rx.send(message), "EBMS:0303")


SECRET = "file-content-that-must-never-appear"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def _soap_with_doctype(message: OutgoingMessage, doctype: str) -> bytes:
    envelope = message.envelope_xml.replace(b"?>", b"?>" + doctype.encode(), 1)
    return b"".join(dataclasses.replace(message, envelope_xml=envelope).chunks())


@pytest.mark.parametrize("kind", ["xxe", "billion-laughs", "doctype"])
def test_doctype_in_the_soap_part_is_refused_unexpanded(rx: Receiver, sbd: bytes, secret_file: Path,
                                                        kind: str) -> None:
    doctype = {
        "xxe": f'<!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret_file}">]>',
        "billion-laughs": '<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>",
        "doctype": "<!DOCTYPE Envelope>",
    }[kind]
    with rx.build(sbd) as message:
        body = _soap_with_doctype(message, doctype)
        if kind != "doctype":  # use the entity so an expanding parser would have to expand it
            body = body.replace(b"<eb:ConversationId>", b"<eb:ConversationId>&" + (b"x" if kind == "xxe" else b"j")
                                + b";", 1)
        started = time.monotonic()
        response = rx.post(body, message.content_type)
    assert time.monotonic() - started < 10
    assert response.status_code == 400 and b"EBMS:0009" in response.data
    assert SECRET.encode() not in response.data
    rx.assert_nothing_stored()


def test_external_entity_in_the_sbd_is_refused_unexpanded(rx: Receiver, sbdh: Sbdh, sbd: bytes,
                                                          secret_file: Path) -> None:
    hostile = sbd.replace(b"?>", f'?><!DOCTYPE x [<!ENTITY s SYSTEM "file://{secret_file}">]>'.encode(), 1)
    hostile = hostile.replace(b"<cbc:Note>", b"<cbc:Note>&s;", 1) if b"<cbc:Note>" in hostile else hostile
    with sealed(rx, sbdh, hostile) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004")
    assert SECRET not in str(error)


def test_oversized_declared_body_is_413_before_reading(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver(as4__max_message_bytes="4096")
    rx.seed()
    with rx.build(sbd) as message:
        response = rx.send(message)
    assert response.status_code == 413 and response.content_type.startswith("text/plain")
    rx.assert_nothing_stored()


def test_oversized_chunked_body_is_413(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver(as4__max_message_bytes="4096")
    rx.seed()
    with rx.build(sbd) as message:
        # no Content-Length, a terminated stream as gunicorn gives for chunked bodies: the reader stops at the limit
        response = rx.client.post("/as4", input_stream=io.BytesIO(b"".join(message.chunks())),
                                  headers={"Content-Type": message.content_type},
                                  environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    rx.assert_nothing_stored()


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/related", "text/html; charset=x"])
def test_wrong_content_type_is_400(rx: Receiver, sbd: bytes, content_type: str | None) -> None:
    with rx.build(sbd) as message:
        response = rx.post(b"".join(message.chunks()), content_type)
    assert response.status_code == 400 and response.data.startswith(b"EBMS:0007")
    rx.assert_nothing_stored()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_mime_is_400(rx: Receiver, sbd: bytes, keep: float) -> None:
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
        response = rx.post(body[: int(len(body) * keep)], message.content_type)
    assert response.status_code == 400 and response.content_type.startswith("text/plain")
    rx.assert_nothing_stored()


def test_oversized_mime_part_headers_are_400(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
        marker = b"Content-Description: Attachment\r\n"
        body = body.replace(marker, marker + b"X-Filler: " + b"a" * (70 << 10) + b"\r\n", 1)
        response = rx.post(body, message.content_type)
    assert response.status_code == 400 and b"exceed" in response.data
    rx.assert_nothing_stored()


def test_gateway_keeps_working_after_hostile_input(rx: Receiver, sbd: bytes) -> None:
    rx.post(b"--x\r\ngarbage", "multipart/related; boundary=x")
    rx.post(b"\x1f\x8b" * 1000, "application/soap+xml")
    with rx.build(sbd) as message:
        assert messaging.parse_envelope_bytes(rx.send(message).data).kind == "receipt"
    assert len(rx.messages()) == 1
