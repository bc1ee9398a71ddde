"""What every API shares: the problem document, the page of a list and its query parameters, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Schema(BaseModel):
    """Base of the response models: every field is in the document's `required` list (a null is sent as null,
    never left out), so a client can tell "no value" from "an older server"."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class FieldProblem(BaseModel):
    field: str = Field(description="`participants[0].identifier`: where in the request")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document"""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Not Found", "status": 404,
         "detail": "no inbound message 'x' for this organisation"},
        {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "limit: Input should be less "
         "than or equal to 500", "parameter": "limit",
         "errors": [{"field": "limit", "message": "Input should be less than or equal to 500"}]},
    ]})

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    parameter: str | None = Field(None, description="the request parameter (query parameter, body field) at fault")
    field: str | None = Field(None, description="the field of a submitted document at fault (`sender`, "
                              "`receiver`, `document`, ...)")
    errors: list[FieldProblem] | None = Field(None, description="every invalid field, when there are several")
    release: str | None = Field(None, description="a document that is not BIS compliant: the rule release used")
    findings: list[dict[str, Any]] | None = Field(None, description="a document that is not BIS compliant: every "
                                                  "finding (rule_id, flag, message, location, line, layer), as "
                                                  "in the `validation` object of a message")


def _rfc3339(value: Any) -> datetime:
    """Only the RFC 3339 text form: pydantic would also take a number as unix seconds, which no client means."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) and "T" in value.upper() else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValueError(f"must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z, not {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("has no time zone; add Z or an offset such as +01:00")
    try:
        # the database keeps UTC: an instant that has no UTC form (9999-12-31T23:00-05:00) is no instant to store
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the years 1-9999 in UTC") from None


# an instant with its time zone: a local time without one would mean something else on every server
Instant = Annotated[datetime, BeforeValidator(_rfc3339),
                    Field(description="RFC 3339 date-time with a time zone", examples=["2026-11-21T09:00:00Z"])]


class Query(BaseModel):
    """Base of the query parameter models: an unknown parameter is refused (400), so that a misspelt filter
    (`?stat=failed`) is not silently ignored and the list answered unfiltered."""

    model_config = ConfigDict(extra="forbid")


class ListQuery(Query):
    """The parameters every list takes: a page size and the cursor of the page to continue from."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}",
                       examples=[10])
    cursor: str | None = Field(None, max_length=1000, description="the cursor of the page to continue from: "
                               "follow `next` (or the Link header) rather than building it")


class Page(Schema):
    """A page of a list; `next` (also the `Link: <...>; rel="next"` header) is null on the last page"""

    items: list[Any]
    next: str | None = Field(description="the URL of the next page, null on the last one")


def model_examples(*examples: dict[str, Any]) -> ConfigDict:
    """The model config of a request or response model with examples (schemathesis sends the request ones)."""
    return ConfigDict(json_schema_serialization_defaults_required=True, json_schema_extra={"examples": list(examples)})


def page_examples(item: type[BaseModel], path: str) -> ConfigDict:
    """The model config of a page of `item`s at `path`: its example is built from the item's own first example."""
    extra = item.model_config.get("json_schema_extra")
    if not isinstance(extra, dict):
        raise TypeError(f"{item.__name__} has no examples to build its page's from")
    cursor = "WyIyMDI2LTExLTIxVDA5OjAwOjAwKzAwOjAwIiwxLCJvbGRlc3QiXQ"
    return model_examples({"items": [extra["examples"][0]], "next": f"{path}?limit=1&cursor={cursor}"},
                          {"items": [], "next": None})
