"""OpenAPI 3.1 documents generated from the pydantic models that validate the requests (spectree).

Each API (network, admin) has one `ApiDoc`; a view declares its operation with `@doc.operation(...)`: the query
and JSON body models spectree validates before the view runs, the response model per status, the problem statuses
it can answer, and what a model cannot say (an XML body, a header). The document is spectree's, with the problem
responses given their media type (`application/problem+json`) and those additions merged in.

spectree rather than flask-openapi3: it decorates plain Flask views and blueprints (flask-openapi3 replaces the
Flask app and blueprint classes), and one app can hold several documents, one per SpecTree instance.

A request that fails its model answers a problem document (accesspoint.web.problems) naming the parameter:
400 for a query parameter, 422 for a body field, with `errors: [{field, message}]` listing every violation.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

import flask
from flask import Flask
from pydantic import BaseModel, ValidationError
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType
from spectree.plugins.flask_plugin import FlaskPlugin

from accesspoint import __version__
from accesspoint.web.problems import PROBLEM_TYPE, ProblemError
from accesspoint.web.schemas.common import Page, Problem

PROBLEM_DESCRIPTIONS = {
    400: "a query parameter is not valid (`parameter` names it)",
    401: "no token, or an unknown, revoked or expired token",
    403: "the token may not use this endpoint: another role, or without the scope it needs (`scope` names it)",
    404: "no such resource (or not one the token's organisation may see)",
    409: "the request conflicts with the resource's state",
    410: "the resource was removed after the retention period",
    413: "the request body is larger than allowed",
    415: "the request body has the wrong media type",
    422: "a body field is not valid, or the request is refused (`errors` names every field and why)",
    502: "a remote service (the SML) failed",
    503: "the answer cannot be given right now; retry later",
}
QUERY_INVALID = 400
BODY_INVALID = 422

INVOICE_XML = '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">...</Invoice>'
RECEIPT_XML = ('<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header>...<eb:Receipt>...'
               '</eb:Receipt>...</S12:Header><S12:Body/></S12:Envelope>')


def xml_body(media_type: str, description: str, example: str) -> dict[str, Any]:
    """An XML response, which no model describes: the operation's `extra` for its 200."""
    return {"responses": {"200": {"description": description, "content": {
        media_type: {"schema": {"type": "string"}, "example": example}}}}}


LINK_HEADER = {"Link": {"description": 'RFC 8288 `<url>; rel="next"` when there is a next page',
                        "schema": {"type": "string"}}}
LOCATION_HEADER = {"Location": {"description": "the URL of the created or queued resource",
                                "schema": {"type": "string"}}}


# pydantic's words for the common violations, in the words the rest of the API uses
_MESSAGES = {"missing": "is required", "extra_forbidden": "is not a known field", "bool_type": "must be true or false"}


def _field(location: tuple[int | str, ...]) -> str:
    """`participants[0].identifier`, as the error messages of the flows name fields."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "body"


def _message(error: Mapping[str, Any]) -> str:
    return _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")


def _invalid_request(_request: Any, response: flask.Response | None, error: Exception | None, *_: Any) -> None:
    """spectree's `before` hook: turn a failed model into our problem document instead of its pydantic dump."""
    if not isinstance(error, ValidationError) or response is None:
        return
    errors = [{"field": _field(e["loc"]), "message": _message(e)} for e in error.errors(include_context=False)]
    status = response.status_code
    title = "Bad Request" if status == QUERY_INVALID else "Unprocessable Content"
    raise ProblemError(status, title, "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                       parameter=errors[0]["field"].split(".")[0].split("[")[0], errors=errors)


MAX_ROW_ID = 2**31 - 1


def int32_path_ids() -> None:
    """A blueprint's `before_request`: an id in the path larger than the 32-bit integer columns is no row (404),
    not a database error; the documents say int32 (spectree's `int` path parameters). Not a converter bound:
    werkzeug answers 405 for a number out of a converter's range when the path has rules for other methods."""
    for value in (flask.request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ROW_ID:
            raise ProblemError(404, "Not Found", f"there is no id {value}: ids are at most {MAX_ROW_ID}")


class _Plugin(FlaskPlugin):
    """spectree's Flask plugin, but a Response the view built itself (a streamed XML document, a receipt) goes out
    untouched: spectree would read it into memory to validate a body that no model describes."""

    def validate_response(self, resp: Any, resp_model: Response | None, skip_validation: bool,
                          force_resp_serialize: bool) -> Any:
        if isinstance(resp, flask.Response) and (resp_model is None or resp_model.find_model(resp.status_code) is None):
            return resp, None
        return super().validate_response(resp, resp_model, skip_validation, force_resp_serialize)


def _not_nullable(parameter: dict[str, Any]) -> None:
    """A query parameter is there or not, never JSON null: `x: str | None = None` in a query model means optional,
    and the document says so instead of pydantic's `anyOf: [..., {type: null}]`."""
    schema = parameter["schema"]
    branches = [branch for branch in schema.get("anyOf", []) if branch != {"type": "null"}]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        outer = {key: value for key, value in schema.items() if key != "anyOf" and (key, value) != ("default", None)}
        parameter["schema"] = {**branches[0], **outer}


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """`extra` into `target`, recursively; lists (the parameters) are extended: spectree's come first."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key].extend(copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


class ApiDoc:
    """The OpenAPI document of one API and the decorator its views declare themselves with."""

    def __init__(self, title: str, description: str) -> None:
        self._tree = SpecTree(
            "flask", backend=_Plugin, mode="strict", title=title, description=description, version=__version__,
            # component names are the model names (they are unique in accesspoint.web.schemas), not spectree's
            # name + module hash, so that the document reads the same in every release
            naming_strategy=lambda model: model.__name__, nested_naming_strategy=lambda _parent, child: child,
            validation_error_model=Problem, before=_invalid_request,
            # the models are passed by `operation` (below): spectree's own way reads every type hint of the view,
            # and Flask's ResponseReturnValue cannot be evaluated at run time
            annotations=False,
            security_schemes=[SecurityScheme(name="bearer",
                                             data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
            security={"bearer": []},
        )
        self._extras: dict[str, dict[str, Any]] = {}

    def operation(self, operation_id: str, *, tags: tuple[str, ...], responses: Mapping[int, Any],
                  problems: tuple[int, ...], query: type[BaseModel] | None = None,
                  json: type[BaseModel] | None = None, extra: Mapping[str, Any] | None = None
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Validate `query` / `json` before the view and document the operation.

        responses: status -> model (None for a body no model describes, described in `extra`); the views
        return model instances, which are serialised as they are; a Page gets the Link header documented.
        problems: the problem statuses the view can answer besides a failed model (401 and 403 come from the
        token check).
        """
        # an operation without a model never fails validation: spectree documents its validation status anyway,
        # so point it at a problem status the operation documents already
        invalid = QUERY_INVALID if query is not None else BODY_INVALID if json is not None else problems[0]
        validated = (invalid,) if query is not None or json is not None else ()
        described: dict[str, Any] = {f"HTTP_{status}": (Problem, PROBLEM_DESCRIPTIONS[status])
                                     for status in {*problems, *validated}}
        bare = []
        for status, model in responses.items():
            if model is None:
                bare.append(f"HTTP_{status}")
            else:
                described[f"HTTP_{status}"] = (model, (inspect.getdoc(model) or model.__name__).splitlines()[0])
        if json is not None:
            # every JSON body is bounded in size and depth before the view (accesspoint.web.json_limits)
            described["HTTP_400"] = (Problem, "the body is not well-formed JSON, or nests deeper than allowed")
            described["HTTP_413"] = (Problem, PROBLEM_DESCRIPTIONS[413])
            described["HTTP_415"] = (Problem, PROBLEM_DESCRIPTIONS[415])
        extras: dict[str, Any] = {}
        for status, model in responses.items():
            if isinstance(model, type) and issubclass(model, Page):
                _merge(extras, {"responses": {str(status): {"headers": LINK_HEADER}}})
        _merge(extras, extra or {})
        self._extras[operation_id] = extras
        validate = self._tree.validate(query=query, json=json, resp=Response(*bare, **described), tags=tags,
                                       operation_id=operation_id, validation_error_status=invalid)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def with_models(*args: Any, **kwargs: Any) -> Any:
                context = flask.request.context  # type: ignore[attr-defined]  (spectree's validated models)
                if query is not None:
                    kwargs["query"] = context.query
                if json is not None:
                    kwargs["json"] = context.json
                return view(*args, **kwargs)

            validated = validate(with_models)
            if json is None:
                return validated

            @wraps(validated)
            def json_only(*args: Any, **kwargs: Any) -> Any:
                # spectree would validate a form, a text or a malformed body as an empty object and answer that
                # the first field is missing
                if not flask.request.is_json:
                    raise ProblemError(415, "Unsupported Media Type", "send the body as Content-Type: "
                                                                      "application/json")
                if flask.request.get_json(silent=True) is None:
                    raise ProblemError(400, "Bad Request", "the body is not well-formed JSON", parameter="body")
                return validated(*args, **kwargs)

            return json_only

        return decorator

    def document(self, app: Flask) -> dict[str, Any]:
        """The document of the operations `app` routes (any app with the API's blueprints registered)."""
        with app.app_context():
            spec = copy.deepcopy(self._tree.spec)
        for operations in spec["paths"].values():
            for operation in operations.values():
                operation["responses"] = dict(sorted(operation["responses"].items()))
                for parameter in operation["parameters"]:
                    if parameter["in"] == "query":
                        _not_nullable(parameter)
                for status, response in operation["responses"].items():
                    if int(status) >= 400 and "content" in response:
                        response["content"] = {PROBLEM_TYPE: response["content"]["application/json"]}
                _merge(operation, self._extras.get(operation["operationId"], {}))
        spec.pop("tags", None)  # spectree lists only the tag names, which the operations carry already
        return spec


NETWORK = ApiDoc("peppol-ap network API", "Submit outbound documents, follow their status, collect inbound documents "
                 "(poll and ack, or webhooks). Every list pages the same way: `{items, next}`, where `next` (and "
                 'the `Link: <...>; rel="next"` header) is the URL of the next page and null on the last. A network '
                 "token acts for one organisation, within its scopes (`outbound:read`, `outbound:write`, "
                 "`inbound:read`, `inbound:ack`, `events:read`, `webhooks`; a missing one is a 403 naming it).")
ADMIN = ApiDoc("peppol-ap admin API", "Organisations, their participants and registrations (SMP, SML, Peppol "
               "Directory), bulk import, the messages of every organisation, API tokens, and the audit log. Admin "
               "tokens only: the `admin` scope may do everything, `support` may read everything and resync. "
               "Lists page like the network API's: `{items, next}` and a Link header.")
