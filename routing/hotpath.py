"""The telephony endpoints' one SQL query per request, and the memory that usually saves it.

Each request needs to know who is calling (the API key and its contact center) and what it
asks about (the dialled number with its flows, or the extension a REFER names). One
hand-written statement answers both in one round trip, returning only the columns used:
measured, the ORM spent more time building the equivalent joined query than PostgreSQL
spent running it. Table and column names come from the models, so a renamed field
breaks loudly here, not silently.

On PostgreSQL the statement runs on a server-side-binding cursor, so psycopg prepares it
once per connection (`prepare_threshold` in the database OPTIONS) instead of it being
planned on every call; Django's other queries keep client-side binding. It still goes
through Django's cursor wrapper: tests count it and DEBUG logs it.

With a shared Redis cache, each process also remembers what the query returned, for a few
seconds, under the telephony generation it read *before* the query
(voiso_byob.cache.bump_telephony_generation: any change to keys, centers, numbers, flows,
extensions or their owners moves it). A request answered from memory checks the generation in
the same Redis round trip as the write it makes anyway (route's menu state) or in one GET
(refer); a different generation drops the memory and the request is answered again from the
database. Measured on these machines, each network round trip costs a worker ~0.1 ms of CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache as once
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.db import connection
from django.db.models import Model

from routing.models import Flow, PhoneNumber, Queue
from routing.refer import ExtensionOwner
from virtual_agents.models import VirtualAgent
from voiso_byob.cache import CACHE_DOWN, TELEPHONY_GENERATION_KEY, cache_unavailable
from voiso_byob.db import prepared_cursor
from voiso_byob.models import ApiKey, ContactCenter, Extension, Membership, User
from voiso_byob.plain_api import KeyRow


@dataclass(frozen=True, slots=True)
class DialledLine:
    """The dialled number's flow: what route_call needs to pick the version to run."""

    flow_id: UUID | None
    published_version_id: UUID | None
    business_hours: str  # JSON text as stored; parsed (and cached) only when chained
    after_hours_version_id: UUID | None


def _t(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _c(model: type[Model], field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


_CENTER_FIELDS = (
    "id",
    "name",
    "slug",
    "timezone",
    "external_transfer_policy",
    "external_allowed_destinations",
    "external_denied_number_types",
    "external_only_bot_targets",
    "routing_revision",
)


def _key_and_center_columns() -> str:
    key = ", ".join(f"k.{_c(ApiKey, name)}" for name in ("id", "hashed_key", "scope", "revoked_at"))
    center = ", ".join(f"c.{_c(ContactCenter, name)}" for name in _CENTER_FIELDS)
    return f"{key}, {center}"


def _key_and_center_from() -> str:
    return (
        f"FROM {_t(ApiKey)} k JOIN {_t(ContactCenter)} c "
        f"ON c.{_c(ContactCenter, 'id')} = k.{_c(ApiKey, 'contact_center')}"
    )


@once
def _route_sql() -> str:
    p, f = PhoneNumber, Flow
    return (
        f"SELECT {_key_and_center_columns()}, p.{_c(p, 'id')}, f.{_c(f, 'id')}, "
        f"f.{_c(f, 'published_version')}, f.{_c(f, 'business_hours')}, a.{_c(f, 'published_version')} "
        f"{_key_and_center_from()} "
        f"LEFT JOIN {_t(p)} p ON p.{_c(p, 'number')} = %s "
        f"AND p.{_c(p, 'contact_center')} = k.{_c(ApiKey, 'contact_center')} "
        f"LEFT JOIN {_t(f)} f ON f.{_c(f, 'id')} = p.{_c(p, 'flow')} "
        f"LEFT JOIN {_t(f)} a ON a.{_c(f, 'id')} = f.{_c(f, 'after_hours_flow')} "
        f"WHERE k.{_c(ApiKey, 'prefix')} = %s"
    )


@once
def _refer_sql() -> str:
    e = Extension
    return (
        f"SELECT {_key_and_center_columns()}, {_owner_columns()} "
        f"{_key_and_center_from()} "
        f"LEFT JOIN {_t(e)} e ON e.{_c(e, 'contact_center')} = k.{_c(ApiKey, 'contact_center')} "
        f"AND e.{_c(e, 'digits')} = %s "
        f"{_owner_joins()}"
        f"WHERE k.{_c(ApiKey, 'prefix')} = %s"
    )


def _owner_columns() -> str:
    e, q, u, v = Extension, Queue, User, VirtualAgent
    return (
        f"e.{_c(e, 'kind')}, q.{_c(q, 'name')}, u.{_c(u, 'full_name')}, u.{_c(u, 'email')}, "
        f"v.{_c(v, 'name')}, v.{_c(v, 'sip_uri')}, v.{_c(v, 'is_enabled')}, v.{_c(v, 'is_connected')}"
    )


def _owner_joins() -> str:
    e, q, m, u, v = Extension, Queue, Membership, User, VirtualAgent
    return (
        f"LEFT JOIN {_t(q)} q ON q.{_c(q, 'extension')} = e.{_c(e, 'id')} "
        f"LEFT JOIN {_t(m)} m ON m.{_c(m, 'extension')} = e.{_c(e, 'id')} "
        f"LEFT JOIN {_t(u)} u ON u.{_c(u, 'id')} = m.{_c(m, 'user')} "
        f"LEFT JOIN {_t(v)} v ON v.{_c(v, 'extension')} = e.{_c(e, 'id')} "
    )


def _owner(digits: str, columns: Sequence[Any]) -> ExtensionOwner:
    kind, queue_name, full_name, email, agent_name, sip_uri, enabled, connected = columns
    return ExtensionOwner.from_columns(
        kind=kind,
        digits=digits,
        queue_name=queue_name,
        user_name=(full_name or email) if email is not None else None,
        agent_name=agent_name,
        agent_sip_uri=sip_uri or "",
        agent_ready=bool(enabled) and bool(connected),
    )


@lru_cache(maxsize=32)
def _owners_sql(count: int) -> str:
    e, q, m, v = Extension, Queue, Membership, VirtualAgent
    owner_id = f"COALESCE(q.{_c(q, 'id')}, m.{_c(m, 'id')}, v.{_c(v, 'id')})"
    digits = ", ".join(["%s"] * count)
    return (
        f"SELECT e.{_c(e, 'digits')}, {owner_id}, {_owner_columns()} FROM {_t(e)} e {_owner_joins()}"  # noqa: S608
        f"WHERE e.{_c(e, 'contact_center')} = %s AND e.{_c(e, 'digits')} IN ({digits})"
    )


def extension_owners(center_id: Any, digits: Sequence[str]) -> dict[str, tuple[ExtensionOwner, str | None]]:
    """Who owns each of these extensions of a center, as refer_lookup sees them, with the owner's id
    (queue, membership or virtual agent). One prepared statement (ingestion resolves Refer-Tos
    with it on every request that holds a REFER to an extension it could not remember)."""
    if not digits:
        return {}
    digits = sorted(set(digits))
    center = str(center_id) if connection.vendor == "postgresql" else UUID(str(center_id)).hex
    with prepared_cursor() as cursor:
        cursor.execute(_owners_sql(len(digits)), [center, *digits])
        rows = cursor.fetchall()
    return {
        row[0]: (_owner(row[0], row[2:]), str(_uuid(row[1])) if row[1] is not None else None) for row in rows
    }


def _fetch(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _uuid(value: Any) -> UUID | None:
    if value is None:
        return None
    return value if isinstance(value, UUID) else UUID(str(value))


_SPLIT = 4 + len(_CENTER_FIELDS)


def _key_and_center(row: tuple[Any, ...]) -> tuple[KeyRow, ContactCenter]:
    key = KeyRow(id=_uuid(row[0]), hashed_key=row[1], scope=row[2], is_revoked=row[3] is not None)
    return key, _center(tuple(row[4:_SPLIT]))


@lru_cache(maxsize=1024)
def _center(values: tuple[Any, ...]) -> ContactCenter:
    """Enough of the center for routing decisions, read-only, never saved. Keyed by every column
    read (the routing revision included), so a changed center is a new entry, never a stale one."""
    center = ContactCenter(**dict(zip(_CENTER_FIELDS, values, strict=True)))
    center.id = _uuid(center.id)
    return center


def route_lookup(prefix: str, number: str) -> tuple[KeyRow, ContactCenter, DialledLine | None] | None:
    """The key (by prefix), its center, and the number's flow in that center; None: no such key."""
    row = _fetch(_route_sql(), (number, prefix))
    if row is None:
        return None
    key, center = _key_and_center(row)
    phone_id, flow_id, version_id, hours, after_version_id = row[_SPLIT:]
    line = None
    if phone_id is not None:
        line = DialledLine(_uuid(flow_id), _uuid(version_id), hours or "", _uuid(after_version_id))
    return key, center, line


def refer_lookup(
    prefix: str, digits: str | None
) -> tuple[KeyRow, ContactCenter, ExtensionOwner | None] | None:
    """The key (by prefix), its center, and who owns `digits` there; None: no such key."""
    row = _fetch(_refer_sql(), (digits, prefix))
    if row is None:
        return None
    key, center = _key_and_center(row)
    owner = _owner(digits, row[_SPLIT:]) if row[_SPLIT] is not None and digits is not None else None
    return key, center, owner


# --- memory -------------------------------------------------------------------------------

LOCAL_SECONDS = 10.0  # bounds staleness if a generation bump was lost (Redis down at that moment)
LOCAL_LIMIT = 10_000


@dataclass(slots=True)
class Inputs:
    """What a telephony answer is computed from, and whether it came from this process's memory."""

    key: KeyRow
    center: ContactCenter
    answer: Any  # DialledLine | ExtensionOwner | None
    generation: Any = None
    from_memory: bool = False


_memory: dict[tuple[str, str, str | None], Inputs] = {}
_memory_times: dict[tuple[str, str, str | None], float] = {}


def can_remember() -> bool:
    """Only with a cache every process shares and that pipelines (Redis): see voiso_byob.cache."""
    return hasattr(cache, "get_then_write")


def remembered(kind: str, prefix: str, argument: str | None) -> Inputs | None:
    memory_key = (kind, prefix, argument)
    inputs = _memory.get(memory_key)
    if inputs is None or time.time() - _memory_times[memory_key] > LOCAL_SECONDS:
        return None
    return inputs


def forget(kind: str, prefix: str, argument: str | None) -> None:
    _memory.pop((kind, prefix, argument), None)


def forget_everything() -> None:
    _memory.clear()
    _memory_times.clear()


def fresh_route(prefix: str, number: str) -> Inputs | None:
    return _fresh("route", prefix, number, route_lookup)


def fresh_refer(prefix: str, digits: str | None) -> Inputs | None:
    return _fresh("refer", prefix, digits, refer_lookup)


def _fresh(kind: str, prefix: str, argument: Any, lookup: Any) -> Inputs | None:
    """From the database; remembered when the generation could be read first."""
    generation, known = None, False
    if can_remember():
        try:
            generation, known = cache.get(TELEPHONY_GENERATION_KEY), True
        except CACHE_DOWN as exc:  # answer from the database, remember nothing
            cache_unavailable("telephony answers read from PostgreSQL", exc)
            known = False
    found = lookup(prefix, argument)
    if found is None:
        return None
    inputs = Inputs(*found, generation=generation)
    if known:
        if len(_memory) >= LOCAL_LIMIT:
            forget_everything()
        _memory[(kind, prefix, argument)] = Inputs(*found, generation=generation, from_memory=True)
        _memory_times[(kind, prefix, argument)] = time.time()
    return inputs
