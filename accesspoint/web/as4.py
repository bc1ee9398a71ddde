"""`POST /as4`: the AS4 endpoint other Peppol access points deliver to.

The body is streamed from `request.stream` into `receiving.receive`, never read whole: under gunicorn a chunked
request arrives de-chunked and terminated (`wsgi.input_terminated`), a Content-Length request as a stream limited to
that length; the MIME reader stops at `as4.max_message_bytes` either way. A declared Content-Length above the limit is
refused before reading anything, and a body shorter than its Content-Length is a transport error, HTTP 400 before
anything is stored or receipted (`request_body`). Peppol requires receivers to accept chunked requests (as4.md
pitfall 8).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from accesspoint.core import MIME_INCONSISTENCY
from accesspoint.flows.receiving import TEXT_CONTENT_TYPE, Outcome, receive
from accesspoint.metrics import metrics
from accesspoint.web import access_log
from accesspoint.web.context import gateway
from accesspoint.web.request_body import complete_chunks

log = logging.getLogger(__name__)

blueprint = Blueprint("as4", __name__)

# Outcome label of a request that failed inside the gateway (HTTP 500), beside receiving.Outcome's four.
FAILED = "failed"


def _text(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, content_type=TEXT_CONTENT_TYPE)


@blueprint.post("/as4")
def as4_post() -> Response:
    started = time.perf_counter()
    response, outcome, error_code = _handle()
    metrics().observe_as4(outcome, error_code, time.perf_counter() - started)
    access_log.note(as4_outcome=outcome, ebms_code=error_code)
    return response


def _handle() -> tuple[Response, str, str | None]:
    """The answer, and the outcome and ebMS error code it is counted under."""
    gw = gateway()
    limit = gw.config.as4.max_message_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        return _text(413, f"EBMS:0007 MimeInconsistency: the request declares {declared} bytes, more than this "
                          f"access point accepts ({limit} bytes)"), Outcome.REFUSED, MIME_INCONSISTENCY
    try:
        # the core takes byte chunks; reading 64 KiB at a time keeps the body streamed
        result = receive(gw, complete_chunks(request.stream, declared), request.headers.get("Content-Type"))
    except ClientDisconnected as exc:
        # A transport error like unreadable MIME (phase4: HTTP 400 with a text body), not an ebMS error: what we
        # read is not the request that was sent, so there is no message to refer to.
        return _text(400, f"Bad Request: {exc.description}"), Outcome.REFUSED, None
    except HTTPException:
        raise  # e.g. the body did not arrive in time (408, server.body_deadlines)
    except Exception:
        # A fault of ours (database down, disk full): no receipt and no ebMS error, because an error tells the
        # sender to give up; a 500 is a transport failure it retries with the same MessageId (as4.md pitfall 16).
        log.exception("inbound AS4 request failed inside the gateway")
        return _text(500, "internal error of the receiving access point; nothing was stored, retry later"), \
            FAILED, None
    response = Response(result.body, status=result.status, content_type=result.content_type)
    return response, result.outcome, result.error_code


@blueprint.route("/as4", methods=["GET", "PUT", "DELETE", "PATCH"])
def as4_other() -> Response:
    response = _text(405, "this is a Peppol AS4 endpoint: POST an AS4 message (multipart/related) here")
    response.headers["Allow"] = "POST"
    return response
