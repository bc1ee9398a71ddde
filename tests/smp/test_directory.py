"""Directory indexer notifications against a real capture server on 127.0.0.1."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from base.egress import EgressPolicy
from smp.directory import DirectoryClient, DirectoryError
from smp.identifiers import ParticipantId
from tests.smp.registry_support import SMP_VECTORS, CaptureServer, Recorded

VECTORS = json.loads((SMP_VECTORS / "dns" / "url-encoding-vectors.json").read_text())
PARTICIPANT = ParticipantId.parse("0088:5798000000001")

# the indexer of these tests runs on 127.0.0.1, as in the local environment
LOOPBACK = EgressPolicy(loopback=True, plain_http=True)


def answering(status: int, body: bytes = b"") -> CaptureServer:
    return CaptureServer(lambda r: (status, body, "text/plain"))


def test_publish_puts_the_unencoded_participant() -> None:
    with answering(204) as server:
        DirectoryClient(server.base + "/", timeout=5, egress=LOOPBACK).publish(PARTICIPANT)
    (request,) = server.requests
    put = VECTORS["directory_indexer_put"]
    assert request.method == "PUT"
    assert request.path == urlsplit(put["url"]).path == "/indexer/1.0/"
    assert request.body.decode("utf-8") == put["body"]
    assert request.headers["Content-Type"] == "text/plain; charset=UTF-8"


def test_delete_uses_the_encoded_participant() -> None:
    with answering(204) as server:
        DirectoryClient(server.base, timeout=5, egress=LOOPBACK).delete(PARTICIPANT)
    (request,) = server.requests
    assert request.method == "DELETE"
    assert request.path == urlsplit(VECTORS["directory_indexer_delete"]).path
    assert request.body == b""


def test_base_url_with_a_path_and_200_answers() -> None:
    with answering(200) as server:
        client = DirectoryClient(server.base + "/directory", timeout=5, egress=LOOPBACK)
        client.publish(PARTICIPANT)
        client.delete(PARTICIPANT)
    assert [r.path for r in server.requests] == [
        "/directory/indexer/1.0/", "/directory/indexer/1.0/iso6523-actorid-upis%3A%3A0088%3A5798000000001"]


def test_deleting_an_unknown_participant_is_done() -> None:
    with answering(404) as server:
        DirectoryClient(server.base, timeout=5, egress=LOOPBACK).delete(PARTICIPANT)
    assert len(server.requests) == 1


@pytest.mark.parametrize(("status", "words", "retryable"), [
    (400, "could not parse the participant identifier iso6523-actorid-upis::0088:5798000000001", False),
    (403, "refused our client certificate", False),
    (401, "refused our client certificate", False),
    (500, "failed (HTTP 500)", True),
    (503, "retried", True),
    (404, "HTTP 404", False),
])
def test_publish_failures_say_what_to_do(status: int, words: str, retryable: bool) -> None:
    with answering(status, b"Invalid participant") as server:
        with pytest.raises(DirectoryError) as caught:
            DirectoryClient(server.base, timeout=5, egress=LOOPBACK).publish(PARTICIPANT)
    assert words in caught.value.message
    assert caught.value.status == status
    assert caught.value.retryable is retryable


def test_unreachable_directory_is_retryable() -> None:
    with answering(204) as server:
        base = server.base
    with pytest.raises(DirectoryError, match="could not be reached") as caught:
        DirectoryClient(base, timeout=2, egress=LOOPBACK).publish(PARTICIPANT)
    assert caught.value.retryable and caught.value.status is None


def test_client_does_not_follow_redirects() -> None:
    def reply(request: Recorded) -> tuple[int, bytes, str]:
        return (302, b"", "text/plain") if request.path.startswith("/indexer") else (204, b"", "text/plain")

    with CaptureServer(reply) as server:
        with pytest.raises(DirectoryError, match="HTTP 302"):
            DirectoryClient(server.base, timeout=5, egress=LOOPBACK).publish(PARTICIPANT)
    assert len(server.requests) == 1
