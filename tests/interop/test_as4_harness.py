"""The as4 peer harness proven on its own: as4 sends to the as4 receiver, before any of our AS4 code is involved.

If these fail, the interop tests of our core say nothing; fix the harness first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import requests

from tests.interop.conftest import NOT_SERVICED
from tests.interop.keys import PeerPki
from tests.interop.peers import As4Receiver, Parties, peer_send, read_request

pytestmark = pytest.mark.interop


def test_as4_to_as4_round_trip_is_acknowledged(
    as4_python: Path, as4_receiver: As4Receiver, to_peer: Parties, invoice: Path, tmp_path: Path
) -> None:
    result = peer_send(as4_python, to_peer, invoice, tmp_path / "send", url=as4_receiver.url)

    assert result["response"]["status"] == 200
    assert result["verdict"] == {"state": "acknowledged", "successful": True, "problem": None, "error": None}
    [received] = as4_receiver.verdicts()
    assert received["successful"] is True
    assert received["message_id"] == result["message_id"]
    assert received["signer"] == to_peer.sender_ap.certificate.subject.rfc4514_string()
    assert (received["sender"], received["recipient"]) == (to_peer.sender, to_peer.recipient)
    assert (received["document_type"], received["process"]) == (to_peer.doctype, to_peer.process)
    sent_sbd = Path(result["request"]["sbd"]).read_bytes()
    assert Path(received["payload"]).read_bytes() == sent_sbd
    assert received["payload_sha256"] == hashlib.sha256(sent_sbd).hexdigest()
    assert invoice.read_bytes().split(b"?>", 1)[1].strip()[:40] in sent_sbd
    # The receipt acknowledged exactly what was signed: Messaging, Body and the one attachment.
    uris = [reference["uri"] for reference in received["signed_references"]]
    assert len(uris) == 3 and sum(uri.startswith("cid:") for uri in uris) == 1
    assert sum(uri.startswith("#") for uri in uris) == 2
    assert {json.dumps(r, sort_keys=True) for r in received["signed_references"]} == {
        json.dumps(r, sort_keys=True) for r in result["sent_references"]
    }


def test_not_serviced_recipient_comes_back_as_a_rejection(
    as4_python: Path, as4_receiver: As4Receiver, to_peer: Parties, invoice: Path, tmp_path: Path
) -> None:
    parties = dataclasses.replace(to_peer, recipient=NOT_SERVICED)
    result = peer_send(as4_python, parties, invoice, tmp_path / "send", url=as4_receiver.url)

    assert result["verdict"]["state"] == "rejected"
    assert result["verdict"]["error"]["code"] == "EBMS:0004"
    assert "PEPPOL:NOT_SERVICED" in result["verdict"]["error"]["detail"]
    [received] = as4_receiver.verdicts()
    assert received["successful"] is False
    assert received["payload"] is None


def test_unpinned_signer_is_refused(
    as4_python: Path, as4_receiver: As4Receiver, peer_pki: PeerPki, invoice: Path, tmp_path: Path
) -> None:
    # The receiver pins only POP000001; here POP000002 signs (and addresses itself).
    parties = Parties(sender_ap=peer_pki.theirs, receiver_ap=peer_pki.theirs)
    result = peer_send(as4_python, parties, invoice, tmp_path / "send", url=as4_receiver.url)

    assert result["verdict"]["state"] == "rejected"
    assert result["verdict"]["error"]["code"] == "EBMS:0101"
    assert as4_receiver.verdicts()[0]["error"]["code"] == "EBMS:0101"


def test_offline_mode_writes_a_postable_request(
    as4_python: Path, to_us: Parties, invoice: Path, tmp_path: Path
) -> None:
    result = peer_send(as4_python, to_us, invoice, tmp_path / "send")

    assert result["response"] is None and result["verdict"] is None
    headers = json.loads(Path(result["request"]["headers"]).read_text())
    assert headers["Content-Type"].startswith("multipart/related;")
    body = Path(result["request"]["body"]).read_bytes()
    assert result["message_id"].encode() in body
    assert Path(result["request"]["sbd"]).read_bytes().startswith(b"<")


def test_receiver_accepts_a_chunked_request(
    as4_python: Path, as4_receiver: As4Receiver, to_peer: Parties, invoice: Path, tmp_path: Path
) -> None:
    # Peppol receivers MUST accept chunked transfer encoding; our sender streams, so the peer must de-chunk.
    result = peer_send(as4_python, to_peer, invoice, tmp_path / "send")
    headers, body = read_request(result)

    response = requests.post(
        as4_receiver.url, data=(body[i : i + 8192] for i in range(0, len(body), 8192)), headers=headers, timeout=60
    )

    assert response.status_code == 200
    [received] = as4_receiver.verdicts()
    assert received["successful"] is True
    assert Path(received["payload"]).read_bytes() == Path(result["request"]["sbd"]).read_bytes()
    request_headers = json.loads((as4_receiver.out / "001-request-headers.json").read_text())
    assert request_headers["Transfer-Encoding"] == "chunked"
