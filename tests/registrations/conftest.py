"""Fixtures for the registration tests: a local SML (real SOAP over HTTP on 127.0.0.1, served from this
process), a Directory capture server, and a gateway configured to use both, with an admin token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.flows.registrations import Registrar
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient, ApiRole
from smp.identifiers import ParticipantId
from smp.localsml import LocalSml, create_local_sml_app
from smp.sml import SmlClient
from tests.smp.registry_support import CaptureServer

OTHER_SMP_ID = "OTHER-SMP"


@dataclass
class RunningSml:
    url: str
    directory: Path

    def client(self, smp_id: str) -> SmlClient:
        return SmlClient(self.url, smp_id, timeout=10)

    def registered(self, smp_id: str) -> set[ParticipantId]:
        """What the SML lists for `smp_id` (its own List operation)."""
        return set(self.client(smp_id).list_participants())

    def other_provider(self) -> SmlClient:
        """Another provider's SMP on the same SML."""
        client = self.client(OTHER_SMP_ID)
        client.create_smp("http://other-provider.invalid/smp", "127.0.0.2")
        return client


@pytest.fixture
def local_sml(tmp_path: Path) -> Iterator[RunningSml]:
    with serve_local_sml(tmp_path / "sml") as running:
        yield running


@contextmanager
def serve_local_sml(directory: Path) -> Iterator[RunningSml]:
    """The local SML's SOAP interface on a free loopback port, in this process."""
    directory.mkdir()
    sml = LocalSml(directory / "sml.sqlite")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, create_local_sml_app(sml), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningSml(f"http://127.0.0.1:{server.server_port}", directory)
    finally:
        server.shutdown()
        server.server_close()
        sml.close()


@pytest.fixture
def directory() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


def make_gateway(tmp_path: Path, **settings: str) -> Gateway:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path / "gateway")}
    env.update({f"PEPPOL_AP_{key.upper()}": value for key, value in settings.items()})
    return build_gateway(load_config(None, env))


@pytest.fixture
def gateway(tmp_path: Path, database_url: str, local_sml: RunningSml, directory: CaptureServer) -> Gateway:
    """A gateway on SQLite and on PostgreSQL with the local SML and the Directory capture server; our SMP is
    registered in the SML."""
    gw = make_gateway(tmp_path, database__url=database_url, sml__management_url=local_sml.url,
                      directory__url=directory.base)
    with Registrar(gw) as registrar:
        registrar.register_smp()
    return gw


@pytest.fixture
def our_smp_id(gateway: Gateway) -> str:
    assert gateway.smp_key is not None
    return gateway.smp_key.subject_cn


def admin_token(gateway: Gateway) -> str:
    with gateway.read() as session:
        client, token = ApiClient.issue("test admin", ApiRole.ADMIN)
        session.add(client)
    return token


@pytest.fixture
def admin(gateway: Gateway) -> FlaskClient:
    """A test client of the gateway's app that sends an admin token."""
    client = create_app(gateway=gateway).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {admin_token(gateway)}"
    return client
