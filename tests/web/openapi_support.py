"""What both OpenAPI documents must hold besides what schemathesis checks: an example for every request body and
every response body, examples that are valid for their own schemas, and the problem responses."""

from __future__ import annotations

from typing import Any

import jsonschema_rs


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    return "example" in media or "examples" in media or "examples" in _resolve(document, media.get("schema", {}))


def assert_documented_with_examples(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation["summary"] and operation["tags"], where
            assert {"401", "403"} <= set(operation["responses"]), where
            for media in operation.get("requestBody", {}).get("content", {}).values():
                assert _has_example(document, media), f"{where}: request body without an example"
            for status, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    if int(status) >= 400:
                        assert media_type == "application/problem+json", f"{where} {status}"
                    assert _has_example(document, media), f"{where} {status}: response without an example"
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if "examples" in schema:
            validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}",
                                                     "components": document["components"]})
            for example in schema["examples"]:
                errors = [error.message for error in validator.iter_errors(example)]
                assert not errors, (name, example, errors)
