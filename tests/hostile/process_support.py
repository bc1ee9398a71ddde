"""What the attack classes against a real gateway process share (gunicorn on 127.0.0.1, tests.e2e.gateway_process):
what it stored, and the proof that it still receipts a valid message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import func, select

from accesspoint.config import load_config
from accesspoint.core.peppol.outbound import OutgoingMessage, build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.gateway import build_gateway
from accesspoint.store.models import Message
from certs.keystore import load_pem
from tests.e2e.gateway_process import GatewayProcess


def stored(gateway: GatewayProcess) -> tuple[int, int]:
    """(Message rows, blob files) of the gateway's store."""
    gw = build_gateway(load_config(None, gateway.env), migrate=False)
    try:
        with gw.read() as session:
            rows = int(session.scalar(select(func.count()).select_from(Message)) or 0)
        return rows, sum(1 for path in gw.blobs.root.rglob("*") if path.is_file())
    finally:
        gw.engine.dispose()


def valid_message(gateway: GatewayProcess, vectors: Path) -> OutgoingMessage:
    """A valid, signed and encrypted message for the gateway's participant (close it after use)."""
    invoice = (vectors / "bis" / "base-example.xml").read_bytes()
    sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC)), invoice)
    recipient = load_pem(gateway.pki.ap_key, gateway.pki.ap_cert).certificate
    return build_message(sbd=sbd, our_key=gateway.sender()[0], recipient_cert=recipient, domain="sender.example",
                         now=datetime.now(UTC))


def valid_message_is_receipted(gateway: GatewayProcess, vectors: Path) -> None:
    with valid_message(gateway, vectors) as built:
        response = requests.post(gateway.as4_url, data=b"".join(built.chunks()), timeout=30,
                                 headers={"Content-Type": built.content_type})
    assert response.status_code == 200 and b"Receipt" in response.content, response.text[:300]
