"""The sending part of the network API against its own OpenAPI description (schemathesis): every generated request
gets an answer whose status, content type and body the document declares, and never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accesspoint.app import create_app
from tests.sending.harness import RECEIVER, Network, network


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("openapi")) as built:
        built.register(RECEIVER)
        yield built


@pytest.fixture(scope="module")
def api_schema(net: Network):  # type: ignore[no-untyped-def]
    app = create_app(gateway=net.gateway)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_sending_api_conforms(api_schema, net: Network) -> None:  # type: ignore[no-untyped-def]
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            # 422 for a schema-valid request is right here: identifiers carry check digits and documents a
            # structure no JSON schema describes, so "positive data is accepted" does not apply
            case.call_and_validate(headers={"Authorization": f"Bearer {net.token}"},
                                   excluded_checks=[positive_data_acceptance])

        check()
        checked.append(operation.label)
    assert len(checked) >= 6, checked
