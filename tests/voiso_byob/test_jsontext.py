"""voiso_byob.jsontext gives exactly json.dumps's text, refusing what jsonb cannot hold."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiso_byob.jsontext import dumps, dumps_compact

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_values)
def test_the_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value, ensure_ascii=False)
    assert dumps_compact(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_datetimes_become_iso_8601_and_other_objects_are_refused() -> None:
    moment = datetime(2026, 5, 1, 9, 30, 0, 250_000, tzinfo=UTC)
    assert dumps_compact([moment, None]) == '["2026-05-01T09:30:00.250000+00:00",null]'
    with pytest.raises(TypeError):
        dumps({"a": {1, 2}})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_refused(number: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps_compact({"x": [number]})


def test_plain_api_answers_are_json_and_other_values_go_through_django() -> None:
    from uuid import UUID

    from voiso_byob.jsontext import dumps_native
    from voiso_byob.plain_api import json_response

    with pytest.raises(TypeError):
        dumps_native({"at": datetime(2026, 5, 1, tzinfo=UTC)})  # no silent datetime format
    fast = json_response({"sip_status": 202, "name": "Équipe"}, status=202)
    assert (fast.status_code, fast["Content-Type"]) == (202, "application/json")
    assert json.loads(fast.content) == {"sip_status": 202, "name": "Équipe"}
    other = json_response({"id": UUID(int=1)})  # not JSON's own: DjangoJSONEncoder, as before
    assert json.loads(other.content) == {"id": "00000000-0000-0000-0000-000000000001"}
