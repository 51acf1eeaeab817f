"""Reads from the read replica (voiso_byob.replica): with two real databases, rows that exist only in
the replica's database show which one a read went to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from reporting.models import CallRecord
from reporting.rollups import rebuild_rollups
from tests.factories import make_center
from tests.voiso_byob.test_settings import settings_value
from voiso_byob.models import ContactCenter
from voiso_byob.replica import REPLICA, is_reading_from_replica, reads_from_replica

TWO_DATABASES = pytest.mark.django_db(databases=["default", REPLICA])


@pytest.fixture(scope="module")
def replica_database(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Path]:
    """A second database, migrated, as the `replica` alias (an SQLite file whatever `default` is)."""
    path = tmp_path_factory.mktemp("replica") / "replica.sqlite3"
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "TEST": {"NAME": str(path)}}
    config = connections.configure_settings({"default": {}, REPLICA: sqlite})[REPLICA]
    settings.DATABASES[REPLICA] = connections.settings[REPLICA] = config
    with django_db_blocker.unblock():
        call_command("migrate", database=REPLICA, verbosity=0)
    yield path
    with django_db_blocker.unblock():
        connections[REPLICA].close()
    settings.DATABASES.pop(REPLICA, None)
    connections.settings.pop(REPLICA, None)  # the same dict as settings.DATABASES, in Django 5.2
    if hasattr(connections._connections, REPLICA):
        delattr(connections._connections, REPLICA)


@pytest.fixture
def center(replica_database: Path) -> ContactCenter:
    """A center in both databases, with one call record in each that the other has not."""
    center = make_center()
    ContactCenter.objects.using(REPLICA).bulk_create(
        [ContactCenter(id=center.id, slug=center.slug, name=center.name)]
    )
    CallRecord.objects.create(contact_center=center, call_id="only-in-default")
    CallRecord.objects.using(REPLICA).create(contact_center_id=center.id, call_id="only-in-replica")
    return center


def _call_ids(center: ContactCenter) -> list[str]:
    return list(CallRecord.objects.for_center(center).values_list("call_id", flat=True))


@TWO_DATABASES
def test_reads_inside_the_block_go_to_the_replica_and_nothing_else_does(center: ContactCenter) -> None:
    assert _call_ids(center) == ["only-in-default"]
    with reads_from_replica():
        assert is_reading_from_replica()
        assert _call_ids(center) == ["only-in-replica"]
    assert not is_reading_from_replica()
    assert _call_ids(center) == ["only-in-default"]


@TWO_DATABASES
def test_writes_and_access_data_stay_on_default_inside_the_block(center: ContactCenter) -> None:
    only_on_default = make_center()  # users, memberships, centers: never read from the replica
    with reads_from_replica():
        CallRecord.objects.create(contact_center=center, call_id="written-inside")
        assert ContactCenter.objects.filter(pk=only_on_default.pk).exists()
        assert only_on_default.memberships.exists()
        record = CallRecord.objects.get(call_id="only-in-replica")
        record.end_reason = "updated"
        record.save()  # read from the replica, saved to default (where it is not: an insert)
    assert CallRecord.objects.using("default").filter(call_id="written-inside").exists()
    assert not CallRecord.objects.using(REPLICA).filter(call_id="written-inside").exists()
    assert CallRecord.objects.using("default").get(call_id="only-in-replica").end_reason == "updated"
    assert CallRecord.objects.using(REPLICA).get(call_id="only-in-replica").end_reason == ""


@TWO_DATABASES
def test_the_decorator_covers_a_view_and_its_streamed_response(center: ContactCenter) -> None:
    @reads_from_replica
    def report(request: HttpRequest) -> list[str]:
        return _call_ids(center)

    @reads_from_replica
    def export(request: HttpRequest) -> StreamingHttpResponse:
        # The rows are read while the server iterates the response, after the view has returned.
        return StreamingHttpResponse(
            f"{call_id}\n"
            for call_id in CallRecord.objects.for_center(center).values_list("call_id", flat=True).iterator()
        )

    assert report(HttpRequest()) == ["only-in-replica"]
    response = export(HttpRequest())
    assert not is_reading_from_replica()
    assert b"".join(response.streaming_content) == b"only-in-replica\n"
    assert _call_ids(center) == ["only-in-default"]


@TWO_DATABASES
def test_under_drf_api_view_the_decorator_goes_next_to_the_function(center: ContactCenter) -> None:
    # How the report endpoints take it: @api_view(...) above, @reads_from_replica right above `def`.
    from rest_framework.decorators import api_view, permission_classes
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory

    @api_view(["GET"])
    @permission_classes([AllowAny])
    @reads_from_replica
    def endpoint(request: Any) -> Response:
        return Response({"call_ids": _call_ids(center)})

    response = endpoint(APIRequestFactory().get("/"))
    assert response.data == {"call_ids": ["only-in-replica"]}
    assert not is_reading_from_replica()


@TWO_DATABASES
def test_an_error_inside_the_block_ends_it(center: ContactCenter) -> None:
    with pytest.raises(ZeroDivisionError), reads_from_replica():
        _ = 1 / 0
    assert not is_reading_from_replica()
    assert _call_ids(center) == ["only-in-default"]


@pytest.mark.django_db
def test_without_a_replica_everything_reads_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(settings.DATABASES, REPLICA, raising=False)
    center = make_center()
    CallRecord.objects.create(contact_center=center, call_id="c1")
    with reads_from_replica():
        assert _call_ids(center) == ["c1"]


def test_database_replica_url_adds_the_alias() -> None:
    url = "postgres://reader@replica.example:5432/voiso"
    replica = "settings.DATABASES['replica']"
    expr = f"{replica}['HOST'], {replica}['TEST']['MIRROR'], settings.DATABASE_ROUTERS"
    value = settings_value(expr, DEBUG="true", DATABASE_REPLICA_URL=url)
    assert value == "replica.example default ['voiso_byob.replica.ReplicaRouter']"
    assert settings_value("'replica' in settings.DATABASES", DEBUG="true") == "False"


@pytest.fixture
def replica_only_call(replica_database: Path, admin: Any) -> CallRecord:
    """Acme and one of its bots in both databases; a contained call to that bot only in the replica."""
    from tests.reporting.factories import make_bot

    center = admin.center
    bot = make_bot(center)
    ContactCenter.objects.using(REPLICA).bulk_create([ContactCenter.objects.get(pk=center.pk)])
    type(bot.integration).objects.using(REPLICA).bulk_create([bot.integration])
    type(bot).objects.using(REPLICA).bulk_create([bot])
    now = timezone.now()
    return CallRecord.objects.using(REPLICA).create(
        contact_center_id=center.id,
        call_id="only-in-replica",
        status="ended",
        direction="inbound",
        started_at=now,
        bot_connected_at=now,
        ended_at=now,
        virtual_agent_id=bot.pk,
        bot_outcome="contained",
    )


@TWO_DATABASES
@pytest.mark.ingested_rollups  # the rollups built where the call is: the replica's database
def test_the_report_api_and_the_exports_read_the_replica(replica_only_call: CallRecord, admin: Any) -> None:
    # The views themselves, not a stand-in: the call exists only in the replica's database.
    assert not CallRecord.objects.filter(call_id="only-in-replica").exists()
    rebuild_rollups(center_id=replica_only_call.contact_center_id, using=REPLICA)
    report = admin.client.get("/api/v1/reports/virtual-agents/?interval=none")
    assert report.status_code == 200
    assert report.json()["totals"]["calls"] == 1
    export = admin.client.get("/calls/export.csv")
    assert b"only-in-replica" in b"".join(export.streaming_content)
    tab = admin.client.get("/reports/virtual-agents/export.csv?interval=none")
    assert tab.status_code == 200
    body = b"".join(tab.streaming_content) if tab.streaming else tab.content
    total = next(line for line in body.decode().splitlines() if line.startswith("total,"))
    assert total.split(",")[4:6] == ["1", "1"]  # calls, contained
