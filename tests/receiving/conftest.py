"""A gateway on a temporary data dir with a shared dev PKI, its Flask test client, and senders' key material."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.core.peppol.outbound import OutgoingMessage, build_message
from accesspoint.core.sbdh import Sbdh, build_sbd, sbdh_from_ubl
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import (
    BIS_BILLING_CREDIT_NOTE,
    BIS_BILLING_PROCESS,
    Event,
    Message,
    Organisation,
    Participant,
    ParticipantDocumentType,
)
from certs.devpki import ensure_dev_pki, init_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pem
from tests.conftest import rules_env


@dataclass(frozen=True)
class Keys:
    pki_dir: Path
    sender: KeyMaterial  # POP000002, issued by the gateway's dev AP CA
    expired: KeyMaterial  # POP000004, same CA, expired yesterday
    other_ap: KeyMaterial  # POP000003, same CA: a valid AP that is not us (messages encrypted for it)
    stranger: KeyMaterial  # POP000005 from another PKI: not trusted


@pytest.fixture(autouse=True)
def log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Log at DEBUG so every log call of the pipeline runs (a bad `extra` key fails only when the level is on)."""
    caplog.set_level(logging.DEBUG, logger="accesspoint")


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    base = tmp_path_factory.mktemp("receiving-pki")
    pki = ensure_dev_pki(base / "pki")
    now = datetime.now(UTC)

    def leaf(cn: str, **kwargs: datetime) -> KeyMaterial:
        issued = issue_leaf(pki, cn=cn, **kwargs)
        return load_pem(issued.key_pem, issued.cert_pem)

    other = init_pki(base / "other-pki", ap_seat_id="POP000005")
    return Keys(
        pki_dir=pki.directory,
        sender=leaf("POP000002"),
        expired=leaf("POP000004", not_before=now - timedelta(days=800), not_after=now - timedelta(days=1)),
        other_ap=leaf("POP000003"),
        stranger=load_pem(other.ap_key, other.ap_cert),
    )


@pytest.fixture(scope="session")
def invoice(vectors: Path) -> bytes:
    return (vectors / "bis" / "base-example.xml").read_bytes()


@pytest.fixture
def sbdh(invoice: bytes) -> Sbdh:
    """A fresh SBDH (new InstanceIdentifier) for the example invoice: 0088:9482348239847239874 -> 0002:FR23342."""
    return sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC))


@pytest.fixture
def sbd(sbdh: Sbdh, invoice: bytes) -> bytes:
    return build_sbd(sbdh, invoice)


@dataclass
class Receiver:
    gateway: Gateway
    client: FlaskClient
    keys: Keys

    @property
    def certificate(self):  # type: ignore[no-untyped-def]
        return self.gateway.key.certificate

    def seed(self, participant: str = "0002:FR23342", *, enabled: bool = True,
             document_types: tuple[tuple[str, str], ...] | None = None) -> int:
        """An organisation with one participant; default document types are BIS Billing invoice + credit note."""
        with self.gateway.read() as session:
            org = Organisation(name=f"Org {participant}", country="SE")
            member = Participant(value=participant, receiving_enabled=enabled)
            if document_types is None:
                member.add_default_document_types()
            else:
                member.document_types = [ParticipantDocumentType(document_type=d, process=p)
                                         for d, p in document_types]
            org.participants.append(member)
            session.add(org)
            session.flush()
            return org.id

    def build(self, sbd: bytes, *, sender: KeyMaterial | None = None, **kwargs: object) -> OutgoingMessage:
        return build_message(sbd=sbd, our_key=sender or self.keys.sender, recipient_cert=self.certificate,
                             domain="sender.example", **{"now": datetime.now(UTC), **kwargs})  # type: ignore[arg-type]

    def post(self, body: bytes, content_type: str | None, **headers: str):  # type: ignore[no-untyped-def]
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.client.post("/as4", data=body, headers=headers)

    def send(self, message: OutgoingMessage):  # type: ignore[no-untyped-def]
        return self.post(b"".join(message.chunks()), message.content_type)

    def messages(self) -> list[Message]:
        with self.gateway.read() as session:
            return list(session.scalars(select(Message).order_by(Message.created_at)))

    def event_count(self) -> int:
        with self.gateway.read() as session:
            return session.scalar(select(func.count()).select_from(Event)) or 0

    def blob_files(self) -> list[Path]:
        return [p for p in self.gateway.blobs.root.rglob("*") if p.is_file()]

    def assert_nothing_stored(self) -> None:
        assert self.messages() == []
        assert self.event_count() == 0
        assert self.blob_files() == []


ReceiverFactory = Callable[..., Receiver]


@pytest.fixture
def make_receiver(keys: Keys, tmp_path: Path) -> Iterator[ReceiverFactory]:
    """A gateway (local environment, the shared dev PKI; SQLite unless a database URL is given) with settings
    overridden by keyword, e.g. `make_receiver(as4__max_message_bytes="1000")`."""
    made: list[Gateway] = []

    def make(database_url: str | None = None, **settings: str) -> Receiver:
        data_dir = tmp_path / f"gw{len(made)}"
        shutil.copytree(keys.pki_dir, data_dir / "pki")
        env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(data_dir), **rules_env()}
        if database_url:
            env["PEPPOL_AP_DATABASE__URL"] = database_url
        env.update({f"PEPPOL_AP_{key.upper()}": value for key, value in settings.items()})
        gateway = build_gateway(load_config(None, env))
        made.append(gateway)
        return Receiver(gateway, create_app(gateway=gateway).test_client(), keys)

    yield make
    for gateway in made:
        gateway.engine.dispose()


@pytest.fixture
def rx(make_receiver: ReceiverFactory) -> Receiver:
    """A gateway serving 0002:FR23342 for BIS Billing 3.0 invoices and credit notes."""
    receiver = make_receiver()
    receiver.seed()
    return receiver


CREDIT_NOTE_ONLY = ((BIS_BILLING_CREDIT_NOTE, BIS_BILLING_PROCESS),)
