"""phase4 <-> our gateway: the interop scenarios of the phase4 issue, each against the real processes.

Our gateway runs as `peppol-ap serve` + `peppol-ap worker` on the harness's dev PKI (gateway_world.py); the
phase4 peer is the session's `phase4_peer`. Every scenario asserts phase4's own verdict (`SendResult.accepted`
includes its NRR callback, which phase4 itself only logs) and what our network API shows. The session ends with a
table of the scenarios and their results (README.md keeps the last one).
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from certs.devpki import DevPki, IssuedLeaf
from tests.interop.phase4.gateway_world import GatewayWorld, gateway_world
from tests.interop.phase4.harness import BIS3_CREDIT_NOTE, BIS3_INVOICE, BIS3_PROCESS, Phase4Peer, SendResult
from tests.interop.phase4.proxy import CorruptingProxy, flip_byte_in_last_part

pytestmark = [pytest.mark.interop, pytest.mark.phase4]

SELLER = "0088:9482348239847239874"  # AccountingSupplierParty of the BIS vectors: ours, sends through us
BUYER = "0002:FR23342"  # AccountingCustomerParty of the BIS vectors: ours, receives through us
SELLER_URI = f"iso6523-actorid-upis::{SELLER}"
BUYER_URI = f"iso6523-actorid-upis::{BUYER}"
NOT_SERVED = "0002:FR99999"  # nobody's
PEER_RECEIVER = "0007:5560360793"  # served by the phase4 peer (SML + SMP of the test network)
PEER_RECEIVER_BEHIND_PROXY = "0007:5560360801"  # served by the phase4 peer, through a corrupting proxy
PEER_RECEIVER_BEHIND_REPEATER = "0007:5560360819"  # served by the phase4 peer, through a proxy delivering twice
BIG_DOCUMENT_BYTES = 20 * 1024 * 1024
HUGE = etree.XMLParser(huge_tree=True)
EB_NS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"


# ---------------------------------------------------------------------------------------------- results table

# The scenario numbers, for the rows of tests that fail before they report their own.
SCENARIO_OF = {
    "test_phase4_sends_to_gateway": "1/3",
    "test_compression_bomb_policy": "3",
    "test_gateway_sends_to_phase4": "2/3",
    "test_identical_repeat_gets_the_original_receipt": "4",
    "test_reused_message_id_with_new_content_is_a_duplicate": "4",
    "test_phase4_already_has_what_we_resend": "4",
    "test_not_serviced": "5",
    "test_phase4_discovers_us_through_our_smp": "6",
    "test_phase4_rejects_what_we_send_corrupted": "7",
    "test_we_reject_what_phase4_sends_corrupted": "7",
}


@dataclass
class Row:
    scenario: str
    case: str
    result: str = "FAILED"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        lines = ["| # | case | result | what was checked | s |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.scenario} | {r.case} | {r.result} | {r.detail} | {r.seconds:.1f} |"
                  for r in sorted(self.rows, key=lambda r: r.scenario)]
        return "\n".join(lines)


@pytest.fixture(scope="session")
def scenario_results(request: pytest.FixtureRequest) -> Iterator[Results]:
    """Collects one row per scenario test; the table is printed when the session ends."""
    results = Results()
    yield results
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if results.rows and reporter is not None and capture is not None:
        # fixture teardown runs with output captured; the table is for the person running the suite
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n\nphase4 <-> gateway scenarios\n" + results.table())


@pytest.fixture
def outcome(request: pytest.FixtureRequest, scenario_results: Results) -> Iterator[Callable[[str, str, str], None]]:
    """`outcome(scenario, case, what was checked)`: call once, as the test's last line; a test that never gets
    there is recorded as FAILED."""
    started = time.monotonic()
    row = Row(scenario="?", case=request.node.name)
    scenario_results.rows.append(row)

    def passed(scenario: str, case: str, detail: str) -> None:
        row.scenario, row.case, row.result, row.detail = scenario, case, "passed", detail

    yield passed
    row.seconds = time.monotonic() - started
    if row.result != "passed":
        row.scenario = SCENARIO_OF.get(request.node.originalname, "?")


# ---------------------------------------------------------------------------------------------- world


@pytest.fixture(scope="module")
def world(phase4_pki: DevPki, phase4_peer: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    """Our gateway on the harness PKI, serving BUYER, sending for SELLER; PEER_RECEIVER published at phase4."""
    participants = {BUYER: True, SELLER: False}
    with gateway_world(tmp_path_factory.mktemp("gateway-world"), phase4_pki, participants) as running:
        running.publish(PEER_RECEIVER, phase4_peer.as4_url, phase4_peer_leaf.certificate, phase4_pki)
        yield running


@pytest.fixture
def peer(peer_receiver_defaults: Phase4Peer) -> Phase4Peer:
    return peer_receiver_defaults


@dataclass(frozen=True)
class Document:
    name: str
    path: Path
    document_type: str


def grown_invoice(vectors: Path, target: Path, content: bytes) -> Path:
    """base-example.xml carrying `content` as an embedded attachment (AdditionalDocumentReference, BIS rule
    order: before AccountingSupplierParty), the way real invoices reach 20 MB (scanned PDFs)."""
    text = (vectors / "bis" / "base-example.xml").read_text(encoding="utf-8")
    attachment = ("<cac:AdditionalDocumentReference><cbc:ID>scan-1</cbc:ID><cac:Attachment>"
                  '<cbc:EmbeddedDocumentBinaryObject mimeCode="application/pdf" filename="scan.pdf">'
                  f"{base64.b64encode(content).decode()}</cbc:EmbeddedDocumentBinaryObject></cac:Attachment>"
                  "</cac:AdditionalDocumentReference>\n    ")
    anchor = "<cac:AccountingSupplierParty>"
    target.write_text(text.replace(anchor, attachment + anchor, 1), encoding="utf-8")
    assert target.stat().st_size > BIG_DOCUMENT_BYTES
    return target


@pytest.fixture(scope="module")
def big_invoice(vectors: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 MB invoice whose attachment compresses like a scan does (hardly: random bytes, fixed seed)."""
    scan = random.Random(20).randbytes(BIG_DOCUMENT_BYTES * 3 // 4 + 1024)
    return grown_invoice(vectors, tmp_path_factory.mktemp("big") / "big-invoice.xml", scan)


@pytest.fixture(params=["invoice", "credit-note", "20 MB invoice"])
def document(request: pytest.FixtureRequest, vectors: Path, big_invoice: Path) -> Document:
    if request.param == "invoice":
        return Document(request.param, vectors / "bis" / "base-example.xml", BIS3_INVOICE)
    if request.param == "credit-note":
        return Document(request.param, vectors / "bis" / "base-creditnote-correction.xml", BIS3_CREDIT_NOTE)
    return Document(request.param, big_invoice, BIS3_INVOICE)


# ---------------------------------------------------------------------------------------------- helpers


def canonical(root: etree._Element) -> bytes:
    return etree.tostring(root, method="c14n2", strip_text=True)


def business_document_in_sbd(sbd_path: str, tag: str) -> etree._Element:
    [business] = [child for child in etree.parse(sbd_path, HUGE).getroot() if child.tag == tag]
    return business


def phase4_sends(peer: Phase4Peer, world: GatewayWorld, pki: DevPki, payload: Path, *,
                 receiver: str = BUYER, document_type: str = BIS3_INVOICE, endpoint_url: str | None = None,
                 message_id: str | None = None) -> SendResult:
    """phase4 sends `payload` straight to our /as4 (or `endpoint_url`), encrypting for our AP certificate."""
    return peer.send(sender=SELLER, receiver=receiver, document_type=document_type, process=BIS3_PROCESS,
                     country_c1="SE", payload_path=payload, endpoint_url=endpoint_url or world.gateway.as4_url,
                     receiver_cert_pem=pki.ap_cert.read_text(), message_id=message_id)


def the_inbound(world: GatewayWorld, as4_message_id: str) -> dict[str, Any]:
    found = world.inbound_by_as4_id(as4_message_id)
    assert len(found) == 1, f"expected one inbox entry for {as4_message_id}, found {found}"
    return found[0]


def peer_inbox_entry(peer: Phase4Peer, as4_message_id: str) -> dict[str, Any]:
    found = [e for e in peer.inbox() if e["messageId"] == as4_message_id]
    assert len(found) == 1, f"expected one phase4 inbox entry for {as4_message_id}, found {found}"
    return found[0]


def receipt_ref(receipt: bytes) -> str | None:
    root = etree.fromstring(receipt, etree.XMLParser(resolve_entities=False, no_network=True))
    return root.findtext(f".//{{{EB_NS}}}SignalMessage/{{{EB_NS}}}MessageInfo/{{{EB_NS}}}RefToMessageId")


def assert_phase4_accepted_our_receipt(sent: SendResult) -> None:
    assert sent.result == "SUCCESS", sent
    assert sent.signature_checked, f"phase4 did not verify our receipt's signature: {sent}"
    assert sent.nrr == "onSuccess", f"phase4's NRR check of our receipt: {sent.nrr} {sent.nrr_text}"
    assert sent.accepted and sent.receipt and not sent.ebms_errors
    assert sent.ref_to_message_id == sent.message_id
    assert sent.signing_cert_subject and "CN=POP000001" in sent.signing_cert_subject


# ---------------------------------------------------------------------------------------------- scenarios 1 + 3


def test_phase4_sends_to_gateway(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki, document: Document,
                                 outcome: Callable[[str, str, str], None]) -> None:
    sent = phase4_sends(peer, world, phase4_pki, document.path, document_type=document.document_type)

    assert_phase4_accepted_our_receipt(sent)
    stored = the_inbound(world, sent.message_id)
    assert stored["state"] == "new"
    # phase4 lower-cases iso6523 identifier values in the SBDH (they compare case-insensitively in Peppol)
    assert (stored["sender"], stored["receiver"]) == (SELLER_URI.lower(), BUYER_URI.lower()), stored
    assert stored["document_type"].endswith(document.document_type)
    assert stored["process"].endswith(BIS3_PROCESS)
    assert stored["country_c1"] == "SE"
    assert stored["sending_ap"]["seat_id"] == "POP000002"
    # the receipt phase4 received and checked is the one we stored as evidence
    phase4_got = Path(sent.response_path or "").read_bytes()
    assert stored["receipt"]["sha256"] == hashlib.sha256(phase4_got).hexdigest()
    # the business document we deliver is the one phase4 sent (canonical XML: phase4 re-serialises it in the SBD)
    delivered = world.api("GET", stored["links"]["document"], timeout=120)
    assert delivered.status_code == 200, delivered.text[:500]
    original = etree.parse(str(document.path), HUGE).getroot()
    assert canonical(etree.fromstring(delivered.content, HUGE)) == canonical(original)
    outcome("1" if document.name == "invoice" else "3", f"phase4 -> gateway: {document.name}",
            "phase4 SUCCESS + receipt signature + NRR onSuccess; inbox API: metadata, receipt = phase4's, "
            "document = sent (C14N)")


def test_compression_bomb_policy(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki, vectors: Path,
                                 tmp_path: Path, outcome: Callable[[str, str, str], None]) -> None:
    # 20 MB of one repeated byte gzips about 1000:1. phase4 has no ratio limit and would take it; our
    # as4.max_compression_ratio (200) refuses it as a likely gzip bomb. No Peppol or ebMS text sets a limit; the
    # ebMS 3.0 error for a payload that cannot be decompressed is EBMS:0303 DecompressionFailure.
    bomb_like = grown_invoice(vectors, tmp_path / "repetitive.xml", b"\0" * (BIG_DOCUMENT_BYTES * 3 // 4 + 1024))
    sent = phase4_sends(peer, world, phase4_pki, bomb_like)

    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert (error["code"], error["severity"]) == ("EBMS:0303", "failure"), error
    assert "decompression bomb" in error["detail"]
    assert world.inbound_by_as4_id(sent.message_id) == []
    outcome("3", "phase4 -> gateway: 20 MB compressing 1000:1",
            "refused by our policy with EBMS:0303 (as4.max_compression_ratio 200; phase4 has no limit)")


# ---------------------------------------------------------------------------------------------- scenarios 2 + 3


def test_gateway_sends_to_phase4(peer: Phase4Peer, world: GatewayWorld, phase4_peer: Phase4Peer, document: Document,
                                 outcome: Callable[[str, str, str], None]) -> None:
    queued = world.submit(document.path.read_bytes(), receiver=PEER_RECEIVER)
    status = world.wait_for(queued["id"], timeout=400)

    assert status["state"] == "sent", status
    assert status["receiving_ap"] == {"seat_id": "POP000002", "endpoint_url": phase4_peer.as4_url}
    as4_id = status["as4_message_id"]
    entry = peer_inbox_entry(peer, as4_id)
    assert "CN=POP000001" in entry["signingCertSubject"]
    assert entry["receiver"] == f"iso6523-actorid-upis::{PEER_RECEIVER}".lower()
    assert entry["sender"] == f"iso6523-actorid-upis::{SELLER}".lower()
    assert entry["documentType"] == f"busdox-docid-qns::{document.document_type}"
    assert entry["countryC1"] == status["country_c1"]
    original = etree.parse(str(document.path), HUGE).getroot()
    assert canonical(business_document_in_sbd(entry["sbdPath"], original.tag)) == canonical(original)
    # our sender verified and stored the receipt phase4 says it answered with
    receipt = world.api("GET", f"/api/v1/outbound/{queued['id']}/receipt")
    assert receipt.status_code == 200, receipt.text[:500]
    assert receipt_ref(receipt.content) == as4_id
    assert receipt.content == Path(entry["responsePath"]).read_bytes()
    outcome("2" if document.name == "invoice" else "3", f"gateway -> phase4: {document.name}",
            "our status sent (receipt verified by our sender), stored receipt = phase4's answer, "
            "phase4 inbox: SBDH fields, signer POP000001, document = sent (C14N)")


# ---------------------------------------------------------------------------------------------- scenario 4


def test_identical_repeat_gets_the_original_receipt(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki,
                                                    bis_invoice: Path,
                                                    outcome: Callable[[str, str, str], None]) -> None:
    # A sender whose first answer got lost resends the same bytes. The proxy delivers phase4's request to us once
    # on its own (that answer is "lost"), then forwards the identical request and hands phase4 the second answer.
    lost: list[requests.Response] = []

    def deliver_twice(content_type: str, body: bytes) -> bytes:
        lost.append(requests.post(world.gateway.as4_url, data=body, headers={"Content-Type": content_type},
                                  timeout=120))
        return body

    with CorruptingProxy(world.gateway.as4_url, deliver_twice) as proxy:
        sent = phase4_sends(peer, world, phase4_pki, bis_invoice, endpoint_url=proxy.url)

    assert len(lost) == 1 and lost[0].status_code == 200
    assert_phase4_accepted_our_receipt(sent)
    assert Path(sent.response_path or "").read_bytes() == lost[0].content, "the repeat got another receipt"
    stored = the_inbound(world, sent.message_id)
    assert stored["receipt"]["sha256"] == hashlib.sha256(lost[0].content).hexdigest()
    outcome("4", "phase4 -> gateway: identical repeat (lost answer)",
            "phase4 accepts (SUCCESS + signature + NRR) the byte-identical original receipt; one inbox entry")


def test_reused_message_id_with_new_content_is_a_duplicate(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki,
                                                           bis_invoice: Path,
                                                           outcome: Callable[[str, str, str], None]) -> None:
    first = phase4_sends(peer, world, phase4_pki, bis_invoice)
    assert_phase4_accepted_our_receipt(first)
    # phase4 builds, signs and encrypts the message anew: same MessageId, other signed content
    again = phase4_sends(peer, world, phase4_pki, bis_invoice, message_id=first.message_id)

    assert again.result == "AS4_ERROR_MESSAGE_RECEIVED", again
    assert not again.accepted
    [error] = again.ebms_errors
    assert error["code"] == "EBMS:4001", error
    assert error["severity"] == "failure"
    assert again.signature_checked, "phase4 did not verify our signed error signal"
    assert again.ref_to_message_id == first.message_id
    the_inbound(world, first.message_id)  # still exactly one
    outcome("4", "phase4 -> gateway: same MessageId, new content",
            "phase4 gets EBMS:4001 DuplicateDetected (signed error, RefToMessageId); one inbox entry")


def test_phase4_already_has_what_we_resend(peer: Phase4Peer, world: GatewayWorld, phase4_peer: Phase4Peer,
                                           phase4_peer_leaf: IssuedLeaf, phase4_pki: DevPki, bis_invoice: Path,
                                           outcome: Callable[[str, str, str], None]) -> None:
    # Our resend after an unanswered try keeps the MessageId (sending.py); the receiver got the first copy. The
    # proxy delivers our request to phase4 on its own first (that answer is "lost"), then forwards the same bytes.
    delivered: list[requests.Response] = []

    def deliver_twice(content_type: str, body: bytes) -> bytes:
        delivered.append(requests.post(phase4_peer.as4_url, data=body, headers={"Content-Type": content_type},
                                       timeout=300))
        return body

    with CorruptingProxy(phase4_peer.as4_url, deliver_twice) as proxy:
        world.publish(PEER_RECEIVER_BEHIND_REPEATER, proxy.url, phase4_peer_leaf.certificate, phase4_pki)
        queued = world.submit(bis_invoice.read_bytes(), receiver=PEER_RECEIVER_BEHIND_REPEATER)
        status = world.wait_for(queued["id"])

    assert len(delivered) == 1 and delivered[0].status_code == 200
    peer_inbox_entry(peer, status["as4_message_id"])  # delivered exactly once
    # No receipt, so no evidence: the message fails, and the person reading it learns the receiver has it.
    assert status["state"] == "failed", status
    assert status["attempts"][-1]["outcome"] == "permanent", status
    version = tuple(int(x) for x in peer.status()["phase4Version"].split(".")[:2])
    assert status["error_code"] == ("EBMS:4001" if version >= (4, 5) else "EBMS:0004"), status
    assert "probably received the document" in status["hint"], status
    outcome("4", "gateway -> phase4: our resend of a message phase4 has",
            "phase4 keeps one copy and answers duplicate (4.4: EBMS:0004); our status failed, hint: receiver has it")


# ---------------------------------------------------------------------------------------------- scenario 5


def test_not_serviced(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki, bis_invoice: Path,
                      outcome: Callable[[str, str, str], None]) -> None:
    sent = phase4_sends(peer, world, phase4_pki, bis_invoice, receiver=NOT_SERVED)

    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert (error["code"], error["severity"], error["detail"]) == ("EBMS:0004", "failure", "PEPPOL:NOT_SERVICED")
    assert sent.ref_to_message_id == sent.message_id
    assert world.inbound_by_as4_id(sent.message_id) == []
    outcome("5", "phase4 -> gateway: participant we do not serve",
            "phase4 sees EBMS:0004 failure, ErrorDetail PEPPOL:NOT_SERVICED; nothing stored")


# ---------------------------------------------------------------------------------------------- scenario 6


def test_phase4_discovers_us_through_our_smp(peer: Phase4Peer, world: GatewayWorld, bis_invoice: Path,
                                             outcome: Callable[[str, str, str], None]) -> None:
    sent = peer.send(sender=SELLER, receiver=BUYER, document_type=BIS3_INVOICE, process=BIS3_PROCESS,
                     country_c1="SE", payload_path=bis_invoice, smp_url=world.smp_url)

    # phase4's SMP client checked our SMP signature against the SMP CA, took our endpoint and certificate from it
    assert_phase4_accepted_our_receipt(sent)
    assert the_inbound(world, sent.message_id)["receiver"].lower().endswith(BUYER.lower())
    outcome("6", "phase4 SMP client reads our /smp",
            "phase4 verifies our SMP signature, sends to the endpoint + certificate we publish, accepts our receipt")


# ---------------------------------------------------------------------------------------------- scenario 7


def test_phase4_rejects_what_we_send_corrupted(peer: Phase4Peer, world: GatewayWorld, phase4_peer: Phase4Peer,
                                               phase4_peer_leaf: IssuedLeaf, phase4_pki: DevPki, bis_invoice: Path,
                                               outcome: Callable[[str, str, str], None]) -> None:
    inbox_before = len(peer.inbox())
    with CorruptingProxy(phase4_peer.as4_url, flip_byte_in_last_part) as proxy:
        world.publish(PEER_RECEIVER_BEHIND_PROXY, proxy.url, phase4_peer_leaf.certificate, phase4_pki)
        queued = world.submit(bis_invoice.read_bytes(), receiver=PEER_RECEIVER_BEHIND_PROXY)
        status = world.wait_for(queued["id"], timeout=120)

    assert proxy.forwarded >= 1
    assert status["state"] == "failed", status
    last = status["attempts"][-1]
    assert last["outcome"] == "permanent", status
    assert last["error_code"] and last["error_code"].startswith("EBMS:"), status
    assert len(peer.inbox()) == inbox_before
    outcome("7", "gateway -> phase4, payload bit flipped in transit",
            f"phase4 refuses ({last['error_code']}), our status failed (permanent), nothing in phase4's inbox")


def test_we_reject_what_phase4_sends_corrupted(peer: Phase4Peer, world: GatewayWorld, phase4_pki: DevPki,
                                               bis_invoice: Path, outcome: Callable[[str, str, str], None]) -> None:
    with CorruptingProxy(world.gateway.as4_url, flip_byte_in_last_part) as proxy:
        sent = phase4_sends(peer, world, phase4_pki, bis_invoice, endpoint_url=proxy.url)

    assert proxy.forwarded == 1
    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert error["severity"] == "failure"
    assert error["code"] in ("EBMS:0102", "EBMS:0303", "EBMS:0101"), error
    assert world.inbound_by_as4_id(sent.message_id) == []
    outcome("7", "phase4 -> gateway, payload bit flipped in transit",
            f"phase4 gets our {error['code']} failure; nothing stored")
