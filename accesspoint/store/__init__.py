"""The store: SQLAlchemy models, Alembic migrations, sessions and the payload blob store.

Models live in `accesspoint.store.models`; engine, sessions, `upgrade` and `claim_outbound` in
`accesspoint.store.database`; payloads in `accesspoint.store.blobs`.
"""

from accesspoint.store.blobs import BlobKeyError, BlobNotFoundError, BlobRef, BlobStore, FilesystemBlobStore
from accesspoint.store.database import begin_write, claim_outbound, make_engine, session_factory, upgrade
from accesspoint.store.tokens import hash_token, new_token

__all__ = [
    "BlobKeyError",
    "BlobNotFoundError",
    "BlobRef",
    "BlobStore",
    "FilesystemBlobStore",
    "begin_write",
    "claim_outbound",
    "hash_token",
    "make_engine",
    "new_token",
    "session_factory",
    "upgrade",
]
