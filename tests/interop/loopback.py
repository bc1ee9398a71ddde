"""A real HTTP server on 127.0.0.1:0 in a thread, answering POSTs with a plain function: the smallest stand-in
for our gateway's /as4 endpoint, so a peer can talk to our protocol core over a socket before the web layer exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (request headers with lower-cased names, request body) -> (status, response headers, response body)
Handler = Callable[[dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def _read_chunked(request: BaseHTTPRequestHandler) -> bytes:
    body = bytearray()
    while True:
        size = int(request.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while request.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                continue
            return bytes(body)
        body += request.rfile.read(size)
        request.rfile.readline(1024)


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Run `handler` behind http://127.0.0.1:<free port>/as4 until the block ends; yields that URL."""

    class Adapter(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = _read_chunked(self)
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, response_headers, response = handler(headers, body)
            self.send_response(status)
            for name, value in response_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows the test's own assertions, not an access log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Adapter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/as4"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
