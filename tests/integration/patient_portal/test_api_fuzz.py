"""Schemathesis against the OpenAPI document, over real HTTP: no 5xx, responses as documented."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import Case, GenerationMode
from schemathesis.openapi import from_url

from patient_portal.api.v1 import api
from patient_portal.app import create_app
from tests.support.databases import DatabaseFactory, run_sync, settings_for
from tests.support.live_server import serve


def test_every_operation_survives_generated_requests(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = run_sync(database_factory.migrated())
    settings = settings_for(url, tmp_path_factory.mktemp("fuzz-var"))
    try:
        with serve(create_app(settings)) as base_url:
            schema = from_url(base_url + "/api/v1/openapi.json")
            operations = [result.ok() for result in schema.get_all_operations()]
            # Every declared endpoint is exercised (the document itself is served, not declared).
            assert len(operations) == len(api.endpoints)
            takes_input = {
                (e.method, api.prefix + e.path) for e in api.endpoints if e.body or e.query
            }
            assert takes_input <= {(o.method.upper(), o.path) for o in operations}
            for operation, mode in itertools.product(operations, GenerationMode):
                key = (operation.method.upper(), operation.path)
                if mode is GenerationMode.NEGATIVE and key not in takes_input:
                    continue  # nothing to get wrong in a request without input

                @given(case=operation.as_strategy(generation_mode=mode))
                @hypothesis_settings(
                    max_examples=60,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                )
                def exercise(case: Case) -> None:
                    case.call_and_validate(base_url=base_url)

                exercise()
    finally:
        run_sync(database_factory.drop(url))
