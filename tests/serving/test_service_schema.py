"""The HTTP service fuzzed from its own OpenAPI schema (schemathesis): no 5xx, and every
response conforms to the schema the service publishes."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import quick_run, write_corpus  # noqa: E402
from lpgnet.serving.predict import Predictor  # noqa: E402
from lpgnet.serving.serve import create_app  # noqa: E402

CASES = 100
# no 5xx, and status codes, content types and bodies as the published schema says; the
# service rightly refuses schema-valid utterances it cannot use (422), so the check that
# every schema-valid request is accepted does not apply
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema")
    write_corpus(folder)
    app = create_app(Predictor.from_run(quick_run(folder)), max_utterances=20, max_sessions=50)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_service_fuzzed_from_its_openapi_schema(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"GET /health", "POST /predict", "POST /sessions"}
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call()
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text}"
            case.validate_response(response, checks=CHECKS)

        fuzz()
