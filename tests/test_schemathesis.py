"""Schemathesis over /openapi.json against a real server in local mode: no generated input gives a 5xx.

The budget is bounded (a few examples per operation, positive and negative), so the run stays near a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.support import ServerProcess

EXAMPLES = 25


@pytest.fixture
def api_schema(server: ServerProcess, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The running server's own OpenAPI schema."""
    if not hasattr(request.node, "_nodeid"):  # schemathesis 4.32's lazy loader still reads pytest < 9's attribute
        request.node._nodeid = request.node.nodeid
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_gives_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
