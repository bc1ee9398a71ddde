"""Fixtures of the network API tests: a gateway on SQLite and PostgreSQL, organisations with tokens, and inbound
messages stored the way the receiving pipeline stores them (SBD in the blob store, receipt, event)."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.core.sbdh import build_sbd, business_document_id, sbdh_from_ubl
from accesspoint.flows.webhooks import INBOUND_RECEIVED, record_event
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import (
    ApiClient,
    ApiRole,
    Direction,
    Message,
    MessageState,
    Organisation,
    Receipt,
)
from smp.dnsserver import ZoneServer
from tests.conftest import rules_env

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dev PKI for the session: generating keys per test would dominate the run time."""
    data = tmp_path_factory.mktemp("pki-source")
    build_gateway(load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(data)}), migrate=False).engine.dispose()
    return data / "pki"


@cache
def _empty_zone_dns() -> str:
    """A real DNS server for the local zone with no names in it, shared by the session: lookups get NXDOMAIN at
    once instead of waiting for a local SML's port that nobody listens on (or that a stray one answers)."""
    server = ZoneServer("local.peppol.test", Path(tempfile.mkdtemp(prefix="empty-zone-")) / "zone.sqlite").start()
    return f"{server.address}:{server.port}"


def gateway_env(data: Path, dev_pki: Path, database_url: str | None = None) -> dict[str, str]:
    if not (data / "pki").exists():
        shutil.copytree(dev_pki, data / "pki")
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(data), "PEPPOL_AP_SML__DNS_SERVERS": _empty_zone_dns(), **rules_env()}
    if database_url:
        env["PEPPOL_AP_DATABASE__URL"] = database_url
    return env


@pytest.fixture
def gateway(tmp_path: Path, dev_pki: Path, database_url: str) -> Iterator[Gateway]:
    gw = build_gateway(load_config(None, gateway_env(tmp_path / "data", dev_pki, database_url)))
    yield gw
    gw.engine.dispose()


@pytest.fixture
def client(gateway: Gateway) -> FlaskClient:
    return create_app(gateway=gateway).test_client()


@dataclass(frozen=True)
class Org:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_org(gateway: Gateway, name: str) -> Org:
    with gateway.read() as session:
        organisation = Organisation(name=name, country="SE")
        session.add(organisation)
        session.flush()
        api_client, token = ApiClient.issue(f"{name} erp", ApiRole.NETWORK, organisation.id)
        session.add(api_client)
        return Org(organisation.id, token)


@pytest.fixture
def acme(gateway: Gateway) -> Org:
    return make_org(gateway, "Acme AB")


@pytest.fixture
def globex(gateway: Gateway) -> Org:
    return make_org(gateway, "Globex AS")


def bis_documents(vectors: Path) -> list[Path]:
    files = sorted((vectors / "bis").glob("*.xml"))
    assert len(files) == 9, "vectors/bis should hold the nine BIS examples"
    return files


@dataclass(frozen=True)
class Stored:
    id: str
    document: bytes
    sbd: bytes
    receipt: bytes
    event_id: str


StoreInbound = Callable[..., Stored]


@pytest.fixture
def store_inbound(gateway: Gateway, vectors: Path) -> StoreInbound:
    return inbound_store(gateway, vectors)


def inbound_store(gateway: Gateway, vectors: Path) -> StoreInbound:
    """Store an inbound message as receiving does: SBD blob, Message(state new), Receipt and the event."""
    counter = iter(range(1_000_000))

    def store(org: Org, document: bytes | None = None, *, state: MessageState = MessageState.NEW,
              at: datetime | None = None, receipt: bool = True) -> Stored:
        n = next(counter)
        document = document if document is not None else (vectors / "bis" / "base-example.xml").read_bytes()
        header = sbdh_from_ubl(document, creation=datetime.now(UTC))
        sbd = build_sbd(header, document)
        ref = gateway.blobs.put(io.BytesIO(sbd))
        received = at or START + timedelta(minutes=n)
        as4_id = f"{uuid.uuid4()}@peer.example"
        receipt_raw = (f'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body/>'
                       f"<!-- receipt for {as4_id} --></S12:Envelope>").encode()
        with gateway.read() as session:
            message = Message(
                direction=Direction.INBOUND, organisation_id=org.id, state=state, as4_message_id=as4_id,
                conversation_id="conv-1", sbdh_instance_id=header.instance_identifier,
                document_id=business_document_id(io.BytesIO(document)), sender=header.sender.uri,
                receiver=header.receiver.uri, document_type=header.document_type.uri, process=header.process.uri,
                country_c1=header.country_c1, peer_ap_cn="POP000002", payload_size=ref.size,
                payload_sha256=ref.sha256, blob_key=ref.key, document_size=len(document), received_at=received,
                created_at=received,
            )
            session.add(message)
            session.flush()
            if receipt:
                session.add(Receipt(message_id=message.id, as4_message_id=f"{uuid.uuid4()}@ap.example",
                                    ref_to_message_id=as4_id, raw=receipt_raw,
                                    sha256=hashlib.sha256(receipt_raw).hexdigest()))
            event = record_event(session, INBOUND_RECEIVED, org.id, message_id=message.id,
                                 data={"message_id": message.id, "sender": header.sender.uri})
            return Stored(message.id, document, sbd, receipt_raw, event.id)

    return store
