"""ReportFilterForm: defaults, bounds, and ids that are not the center's."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import time_machine
from django.http import QueryDict

from reporting.reports.filters import MAX_DAYS, ReportFilterForm, ReportFilters, filters_query
from tests.factories import make_queue
from tests.reporting.factories import make_bot


def form(center, query: str) -> ReportFilterForm:
    return ReportFilterForm(QueryDict(query), center=center)


@time_machine.travel("2026-05-10 03:00:00+00:00", tick=False)
def test_defaults_are_the_last_seven_days_by_day_in_the_centers_zone(acme) -> None:
    acme.timezone = "America/New_York"  # 23:00 on May 9 there
    acme.save()
    f = form(acme, "")
    assert f.is_valid(), f.errors
    filters = f.filters()
    assert (filters.start, filters.end, filters.tz.key, filters.interval) == (
        date(2026, 5, 3),
        date(2026, 5, 9),
        "America/New_York",
        "day",
    )
    assert (filters.virtual_agents, filters.queues, filters.campaigns, filters.direction) == ((), (), (), "")
    kolkata = form(acme, "tz=Asia/Kolkata").filters()
    assert (kolkata.end, kolkata.tz.key) == (date(2026, 5, 10), "Asia/Kolkata")
    alone = form(acme, "start=2026-04-01").filters()
    assert (alone.start, alone.end) == (date(2026, 4, 1), date(2026, 4, 7))


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("tz=Mars/Olympus", "tz", "invalid_timezone"),
        ("tz=../../etc/passwd", "tz", "invalid_timezone"),
        ("interval=minute", "interval", "invalid_choice"),
        ("start=2026-05-02&end=2026-05-01", "end", "invalid_date_range"),
        ("start=1969-12-31&end=1970-01-01", "start", "invalid_date_range"),
        ("start=9999-12-30&end=9999-12-31", "start", "invalid_date_range"),
        ("start=2026-13-01", "start", "invalid"),
        ("start=2026-01-01&end=2026-02-01&interval=15m", "interval", "range_too_long"),
        ("start=2026-01-01&end=2026-04-03&interval=hour", "interval", "range_too_long"),
        ("start=2020-01-01&end=2026-01-01&interval=day", "interval", "range_too_long"),
        ("direction=sideways", "direction", "invalid_choice"),
        ("virtual_agent=not-a-uuid", "virtual_agent", "invalid"),
    ],
)
def test_refused_queries_name_the_field(acme, query: str, field: str, code: str) -> None:
    f = form(acme, query)
    assert not f.is_valid()
    assert [e.code for e in f.errors.as_data()[field]] == [code]


def test_the_longest_ranges_each_interval_allows(acme) -> None:
    for interval, days in MAX_DAYS.items():
        end = date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + days - 1)
        assert form(acme, f"start=2026-01-01&end={end}&interval={interval}").is_valid(), interval


def test_ids_of_another_center_are_refused_exactly_like_unknown_ones(acme, globex) -> None:
    theirs, unknown = make_bot(globex), uuid.uuid4()
    messages = []
    for pk in (theirs.pk, unknown):
        f = form(acme, f"virtual_agent={pk}")
        assert not f.is_valid()
        messages.append(f.errors["virtual_agent"][0].replace(str(pk), "ID"))
    assert messages[0] == messages[1]
    their_queue = make_queue(globex, name="Theirs", extension="4999")
    assert not form(acme, f"queue={their_queue.pk}").is_valid()


def test_repeatable_ids_and_the_round_trip_through_the_query_string(acme) -> None:
    a, b = make_bot(acme), make_bot(acme)
    sales = make_queue(acme, name="Sales", extension="4323")
    f = form(
        acme,
        f"virtual_agent={a.pk}&virtual_agent={b.pk}&queue={sales.pk}&direction=inbound"
        "&start=2026-03-01&end=2026-03-31&interval=hour&tz=Asia/Kathmandu",
    )
    assert f.is_valid(), f.errors
    filters = f.filters()
    assert set(filters.virtual_agents) == {a.pk, b.pk} and filters.queues == (sales.pk,)
    query = QueryDict(mutable=True)
    for name, values in filters_query(filters).items():
        query.setlist(name, values)
    again = ReportFilterForm(query, center=acme)
    assert again.is_valid() and again.filters() == filters
    assert isinstance(filters, ReportFilters)


def test_too_many_ids_are_refused(acme) -> None:
    query = "&".join(f"queue={uuid.uuid4()}" for _ in range(101))
    f = form(acme, query)
    assert not f.is_valid() and f.errors.as_data()["queue"][0].code == "too_many"
