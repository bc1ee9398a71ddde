"""The receiving tests' gateway fixtures (a gateway on a temporary data dir, its test client, senders' keys), for the
AS4 attack classes of this catalogue."""

from tests.receiving.conftest import (  # noqa: F401  (fixtures are found by name)
    invoice,
    keys,
    log_everything,
    make_receiver,
    rx,
    sbd,
    sbdh,
)
