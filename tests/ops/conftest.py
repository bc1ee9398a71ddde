"""The receiving tests' gateway fixtures (a gateway on a temporary data dir, its test client, senders' keys)."""

from tests.receiving.conftest import (  # noqa: F401  (fixtures are found by name)
    invoice,
    keys,
    log_everything,
    make_receiver,
    rx,
    sbd,
    sbdh,
)
