"""A body shorter than its Content-Length, over a real socket to a real gateway process (gunicorn): the client sends
less than it declares and half-closes the connection (and the chunked variant: no last chunk). HTTP 400, no receipt,
nothing stored; the gateway goes on receipting valid messages."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.hostile.process_support import stored, valid_message, valid_message_is_receipted

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayProcess:
    process = GatewayProcess(tmp_path_factory.mktemp("short") / "data")
    process.prepare()
    process.start()
    yield process
    process.stop()


def _post(gateway: GatewayProcess, body: bytes, content_type: str, declared: int) -> tuple[int, bytes]:
    """POST /as4 declaring `declared` bytes, send `body`, half-close; the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(f"POST /as4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {declared}\r\nConnection: close\r\n\r\n".encode() + body)
        sock.shutdown(socket.SHUT_WR)  # nothing more will come: the body ends here
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1]), answer


# An epilogue after the MIME closing boundary means nothing (RFC 2046), but it puts the boundary chunks before the
# end of the body, where a reader that stops at the boundary would never look.
EPILOGUE = b"\r\n" + b"epilogue " * ((200 << 10) // 9)


@pytest.mark.parametrize("cut", [
    pytest.param("whole", id="whole-message-under-a-larger-length"),
    pytest.param("epilogue", id="whole-message-and-an-epilogue-under-a-larger-length"),
    pytest.param("half", id="cut-in-the-middle"),
])
def test_a_body_shorter_than_its_content_length_is_refused(gateway: GatewayProcess, vectors: Path,
                                                           cut: str) -> None:
    before = stored(gateway)
    with valid_message(gateway, vectors) as message:
        body = b"".join(message.chunks())
        sent = {"whole": body, "epilogue": body + EPILOGUE, "half": body[: len(body) // 2]}[cut]
        status, answer = _post(gateway, sent, message.content_type, declared=len(sent) + 100)
    assert status == 400, answer[:500]
    assert b"Receipt" not in answer and b"bytes its Content-Length declares" in answer
    assert stored(gateway) == before
    valid_message_is_receipted(gateway, vectors)
    assert stored(gateway) == (before[0] + 1, before[1] + 1)


def test_a_chunked_body_that_ends_before_its_last_chunk_is_refused(gateway: GatewayProcess, vectors: Path) -> None:
    before = stored(gateway)
    with valid_message(gateway, vectors) as message:
        body = b"".join(message.chunks())
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        # the whole message in one chunk, but no terminating zero-size chunk: the body never ends
        sock.sendall(f"POST /as4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {message.content_type}\r\n"
                     f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body + b"\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:500]
    assert b"Receipt" not in answer and b"could not be read to its end" in answer
    assert stored(gateway) == before
    valid_message_is_receipted(gateway, vectors)


def test_the_same_socket_client_is_receipted_when_the_length_is_right(gateway: GatewayProcess,
                                                                      vectors: Path) -> None:
    before = stored(gateway)
    with valid_message(gateway, vectors) as message:
        body = b"".join(message.chunks())
        status, answer = _post(gateway, body, message.content_type, declared=len(body))
    assert status == 200 and b"Receipt" in answer, answer[:500]
    assert stored(gateway) == (before[0] + 1, before[1] + 1)
