"""The store: SQLAlchemy models, Alembic migrations, sessions and the queue-claim helper.

Models live in `accesspoint.store.models`; engine, sessions, `upgrade` and `claim_outbound` in
`accesspoint.store.database`. Payloads live in a blob store (`accesspoint.adapters.blobs`).
"""

from accesspoint.store.database import begin_write, claim_outbound, make_engine, session_factory, upgrade
from accesspoint.store.tokens import hash_token, new_token

__all__ = [
    "begin_write",
    "claim_outbound",
    "hash_token",
    "make_engine",
    "new_token",
    "session_factory",
    "upgrade",
]
