"""/api/v1/openapi.json: valid OpenAPI 3, the same operations as the routes, and the API keeps to it."""
from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from adapters.web.api import API_PREFIX, BLUEPRINT
from adapters.web.openapi import openapi_spec

# Per operation and mode: the whole run stays well under a minute. Raise it to hunt: SCHEMATHESIS_EXAMPLES=500.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def test_the_description_is_valid_openapi_3(web):
    response = web.client.get(f"{API_PREFIX}/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)  # raises on any violation of the OpenAPI 3.0 schema
    assert spec["openapi"].startswith("3.")


def test_the_description_lists_exactly_the_routes(web):
    spec = web.client.get(f"{API_PREFIX}/openapi.json").get_json()
    described = {
        (API_PREFIX + path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = {
        (re.sub(r"<int:(\w+)>", r"{\1}", rule.rule).replace("<", "{").replace(">", "}"), method)
        for rule in web.app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{BLUEPRINT}.") and not rule.endpoint.startswith(f"{BLUEPRINT}._unrouted")
        for method in rule.methods - AUTOMATIC_METHODS
    }
    assert described == routed


# -- schemathesis: generated requests against the real app, responses checked against the description --
# Driven through hypothesis directly: schemathesis' own pytest plugin (4.32) does not run on pytest 9.
SPEC = openapi_spec(server_url=API_PREFIX, max_upload_bytes=1, max_question_chars=1, max_page=1)
OPERATIONS = [(path, method) for path, item in SPEC["paths"].items() for method in item if method != "parameters"]
# Negative data needs something to negate: operations without parameters or a body have none.
CASES = [
    (path, method, mode)
    for path, method in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or path not in ("/health", "/ready", "/openapi.json")
]


@pytest.fixture
def conformance(make_web):
    """Rate limits off: hundreds of generated questions are not what the limits are for."""
    return make_web(rate_user_per_min=0, rate_channel_per_min=0, rate_workspace_per_hour=0, allow_private_urls=False)


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m.upper()} {p} {g.value}" for p, m, g in CASES])
def test_generated_requests_get_documented_responses_and_no_server_errors(conformance, path, method, mode):
    api = schemathesis.openapi.from_wsgi(f"{API_PREFIX}/openapi.json", conformance.app)
    operation = api[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case) -> None:
        # OpenAPI cannot say which file names an upload may have (.md, .pdf...): an upload named
        # "file" is rightly refused with a 400 that names the field, though the description allows it.
        excluded = [positive_data_acceptance] if case.media_type == "multipart/form-data" else []
        case.call_and_validate(headers=conformance.auth(), excluded_checks=excluded)

    check()
