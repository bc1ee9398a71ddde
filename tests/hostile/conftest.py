"""The receiving tests' gateway fixtures (a gateway on a temporary data dir, its test client, senders' keys), for the
AS4 attack classes of this catalogue; and, for the API attack classes, a test client and an organisation of the
module's own `gateway` fixture."""

import pytest
from flask.testing import FlaskClient

from accesspoint.app import create_app
from accesspoint.gateway import Gateway
from tests.receiving.conftest import (  # noqa: F401  (fixtures are found by name)
    invoice,
    keys,
    log_everything,
    make_receiver,
    rx,
    sbd,
    sbdh,
)
from tests.web.conftest import Org, make_org


@pytest.fixture
def client(gateway: Gateway) -> FlaskClient:
    return create_app(gateway=gateway).test_client()


@pytest.fixture
def acme(gateway: Gateway) -> Org:
    return make_org(gateway, "Acme AB")
