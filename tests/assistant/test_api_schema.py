"""schemathesis drives every operation in /api/openapi.json: no input may cause a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from assistant.keys import api_key_create
from assistant.wsgi import application
from ingest.services import kb_get_or_create

# Loaded at collection: the schema endpoint needs no database. (The lazy from_fixture
# loader does not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def api_token(transactional_db, llm_server, ingest_text) -> str:
    kb = kb_get_or_create(name="alpha")
    ingest_text(kb, "guide.md", "# Guide\n\nHold the power button for ten seconds to reset.")
    _, token = api_key_create(name="fuzz", knowledge_bases=[kb], can_write=True)
    return token


@pytest.fixture
def existing(api_token) -> dict:
    """Ids that exist, so generated requests get past the lookups into the real work."""
    from ingest.models import Document

    return {"slug": "alpha", "pk": Document.objects.get().pk}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case, api_token, existing):
    for name, value in existing.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_token}"}, checks=[not_a_server_error]
    )
