"""RFC 9457 problem documents: every error of the JSON APIs is one of these."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE = "application/problem+json"
API_PREFIXES = ("/api/", "/admin/api")


class ProblemError(Exception):
    """Raise anywhere in an API view to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(f"{status} {title}: {detail or ''}")
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, title: str, detail: str | None = None, *, type_: str = "about:blank",
            **extra: Any) -> Response:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_TYPE
    return response


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES)


def register_problem_handlers(app: Flask) -> None:
    @app.errorhandler(ProblemError)
    def _problem_error(exc: ProblemError) -> Response:
        response = problem(exc.status, exc.title, exc.detail, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_exception(exc: HTTPException) -> Response | HTTPException:
        if not is_api_request():
            return exc
        response = problem(exc.code or 500, exc.name, exc.description)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if is_api_request():
            return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")
        return Response("Internal Server Error\n", status=500, mimetype="text/plain")
