"""A loopback HTTP proxy that alters AS4 requests on the way, for "corrupted in transit" scenarios.

phase4 offers no hook to damage its own outgoing message after signing, so the test puts this between sender
and receiver: the sender posts to the proxy, the proxy applies ``mutate`` to the body and forwards the rest unchanged.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# Headers that describe the hop, not the message; http.client sets its own.
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}

Mutation = Callable[[str, bytes], bytes]
"""(Content-Type header, body) -> body to forward."""


class CorruptingProxy:
    """Forwards every POST to ``target_url`` after ``mutate``; answers with the target's response unchanged."""

    def __init__(self, target_url: str, mutate: Mutation) -> None:
        self.target_url = target_url
        self.mutate = mutate
        self.forwarded = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self._read_body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                changed = proxy.mutate(self.headers.get("Content-Type", ""), body)
                # http.client, not requests: bodies and headers pass through without any decoding or additions.
                target = urlsplit(proxy.target_url)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                try:
                    conn.request("POST", target.path, body=changed, headers=headers)
                    resp = conn.getresponse()
                    content = resp.read()
                finally:
                    conn.close()
                proxy.forwarded += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length", "0")))
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after each chunk

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean; the peer logs both ends

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/as4"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CorruptingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def mime_boundary(content_type: str) -> bytes:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"').encode()
    raise ValueError(f"no boundary parameter in Content-Type {content_type!r}")


def flip_byte_in_last_part(content_type: str, body: bytes) -> bytes:
    """Flip one bit in the middle of the last MIME part's content (the encrypted payload of a Peppol AS4 message)."""
    delimiter = b"\r\n--" + mime_boundary(content_type)
    end = body.rindex(delimiter)  # the closing delimiter
    part = body.rindex(delimiter, 0, end)  # the delimiter opening the last part
    start = body.index(b"\r\n\r\n", part + len(delimiter)) + 4  # its content follows the blank line
    if end - start < 2:
        raise ValueError("the last MIME part is empty; nothing to corrupt")
    middle = (start + end) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
