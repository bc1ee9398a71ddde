"""The access log: one JSON line per request with the request id, the caller's organisation and token name (never
the token), the id returned in X-Request-Id and carried by the application log lines of the request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from accesspoint.logs import JsonFormatter
from tests.web.conftest import Org, StoreInbound


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:  # type: ignore[type-arg]
    """The JSON log lines of the `accesspoint` loggers, parsed, as the production handler writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("accesspoint")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines: list[dict] = []  # type: ignore[type-arg]
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def _read(lines: list[dict], raw: str) -> list[dict]:  # type: ignore[type-arg]
    lines[:] = [json.loads(line) for line in raw.splitlines()]
    return lines


def _handler_output() -> str:
    handler = next(h for h in logging.getLogger("accesspoint").handlers
                   if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, JsonFormatter))
    stream = handler.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def _access(lines: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [line for line in lines if line["logger"] == "accesspoint.access"]


def test_one_json_line_per_request_with_caller_and_request_id(client: FlaskClient, acme: Org,
                                                              store_inbound: StoreInbound,
                                                              log_lines: list[dict]) -> None:  # type: ignore[type-arg]
    store_inbound(acme)
    response = client.get("/api/v1/inbound?limit=5", headers={**acme.auth, "X-Request-Id": "erp-42.a/b"},
                          environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 200 and response.data  # the test client sends the body when it is read
    assert response.headers["X-Request-Id"] == "erp-42.a/b"
    raw = _handler_output()
    [line] = _access(_read(log_lines, raw))
    assert line["method"] == "GET" and line["path"] == "/api/v1/inbound" and line["status"] == 200
    assert line["size"] == len(response.data) > 0
    assert line["duration_ms"] >= 0 and line["remote_addr"] == "192.0.2.7"
    assert line["request_id"] == "erp-42.a/b"
    assert line["organisation_id"] == acme.id and line["token_name"] == "Acme AB erp"
    assert acme.token not in raw and acme.token[8:] not in raw


def test_unusable_request_ids_are_replaced(client: FlaskClient, log_lines: list[dict]) -> None:  # type: ignore[type-arg]
    seen = []
    for incoming in ("has space", "x" * 129, "tab\there", None):
        headers = {} if incoming is None else {"X-Request-Id": incoming}
        response = client.get("/health", headers=headers)
        assert response.data
        generated = response.headers["X-Request-Id"]
        assert generated != incoming and len(generated) == 32 and int(generated, 16) >= 0
        seen.append(generated)
    assert len(set(seen)) == 4
    lines = _access(_read(log_lines, _handler_output()))
    assert [line["request_id"] for line in lines] == seen
    assert all("token_name" not in line and "organisation_id" not in line for line in lines)


def test_refused_request_without_a_token_is_logged(client: FlaskClient, log_lines: list[dict]) -> None:  # type: ignore[type-arg]
    response = client.get("/api/v1/inbound", headers={"Authorization": "Bearer pap_notatoken"})
    assert response.status_code == 401 and response.data
    [line] = _access(_read(log_lines, _handler_output()))
    assert line["status"] == 401 and "token_name" not in line
    assert "pap_notatoken" not in _handler_output()


def test_streamed_body_is_counted_whole(client: FlaskClient, acme: Org, store_inbound: StoreInbound,
                                        log_lines: list[dict]) -> None:  # type: ignore[type-arg]
    stored = store_inbound(acme)
    response = client.get(f"/api/v1/inbound/{stored.id}/document?format=sbd", headers=acme.auth)
    assert response.data == stored.sbd
    [line] = _access(_read(log_lines, _handler_output()))
    assert line["path"] == f"/api/v1/inbound/{stored.id}/document" and line["size"] == len(stored.sbd)


def test_as4_outcome_and_application_lines_carry_the_request_id(client: FlaskClient,
                                                                log_lines: list[dict]) -> None:  # type: ignore[type-arg]
    response = client.post("/as4", data=b"not a MIME message", headers={"Content-Type": "multipart/related",
                                                                       "X-Request-Id": "peer-7"})
    assert response.data
    assert response.headers["X-Request-Id"] == "peer-7"
    lines = _read(log_lines, _handler_output())
    [access] = _access(lines)
    assert access["as4_outcome"] == "refused" and access["ebms_code"].startswith("EBMS:")
    assert access["status"] == response.status_code
    refused = [line for line in lines if line["msg"] == "inbound message refused"]
    assert refused and all(line["request_id"] == "peer-7" for line in refused)
    # outside a request no id is set, also after a response whose body nobody read
    client.get("/health", headers={"X-Request-Id": "abandoned"})
    logging.getLogger("accesspoint.test").info("after the request")
    assert "request_id" not in json.loads(_handler_output().splitlines()[-1])
