"""A request body as byte chunks that is either complete or raises: never a body shorter than its Content-Length.

gunicorn marks its request streams terminated (`wsgi.input_terminated`), so werkzeug reads them as they are instead
of through its LimitedStream (which raises ClientDisconnected for a short body): a client that declares more bytes
than it sends and half-closes the connection just makes the stream end early. The AS4 reader stops at the MIME
closing boundary, so a complete-looking message under a larger Content-Length would be verified, stored and
receipted although the request as declared never arrived. Here the last chunk is held back until the end of the
stream has been read and its length checked: the reader cannot reach the closing boundary, nor the receipt, first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from werkzeug.exceptions import ClientDisconnected

CHUNK = 64 << 10


def complete_chunks(stream: IO[bytes], declared: int | None) -> Iterator[bytes]:
    """The chunks of `stream`, the last one only once the stream has ended with `declared` bytes (when given).

    Raises ClientDisconnected (HTTP 400) instead of yielding the last chunk of a body that ended early, and for a
    body that cannot be read to its end.
    """
    received = 0
    held = b""
    while chunk := _read(stream):
        if held:
            yield held
        held = chunk
        received += len(chunk)
    if declared is not None and received < declared:
        raise ClientDisconnected(f"the request body ended after {received} of the {declared} bytes its "
                                 "Content-Length declares; nothing was processed, send the message again")
    if held:
        yield held


def _read(stream: IO[bytes]) -> bytes:
    try:
        return stream.read(CHUNK)
    except OSError as exc:
        # The connection, not the message: a chunked body that ends before its last chunk (gunicorn's NoMoreData is
        # an OSError) or a reset. Time-outs never get here: server.body_deadlines turns them into a 408 first.
        raise ClientDisconnected(f"the request body could not be read to its end ({exc}); nothing was processed, "
                                 "send the message again") from exc
