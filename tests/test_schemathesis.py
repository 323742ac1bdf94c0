"""Schemathesis over /openapi.json against a real server in local mode: no generated input gives a 5xx.

The budget is bounded (15 examples per operation, positive and negative; about a minute here).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.support import ServerProcess

EXAMPLES = 15
# CSV uploads are read by agent/threads/bulk.py and agent/suppressions/service.py, whose one shared CSV reader is
# being written separately (issue 12: "a CSV field over 128 KB raises _csv.Error"; a bare CR in a header row does
# too). Remove this exclusion once that reader turns csv.Error into a 422.
CSV_UPLOADS = ["/api/threads/bulk/csv", "/api/suppressions/import"]


@pytest.fixture
def api_schema(server: ServerProcess, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The running server's own OpenAPI schema."""
    if not hasattr(request.node, "_nodeid"):  # schemathesis 4.32's lazy loader still reads pytest < 9's attribute
        request.node._nodeid = request.node.nodeid
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=CSV_UPLOADS, method="POST")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_gives_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
