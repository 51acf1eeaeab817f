"""The calls browser: list with filters and keyset pages, CSV export, one call's page."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlparse
from zoneinfo import ZoneInfo

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from reporting.models import BotOutcome, CallRecord, Direction, HandoffState, TargetType
from reporting.queries import PAGE_SIZE
from tests.conftest import Persona
from tests.factories import make_member, make_queue
from tests.reporting.factories import T0, make_bot, make_call, make_event, make_handoff, make_report
from voiso_byob.models import ContactCenter, Role

LIST = reverse("reporting:call_list")
EXPORT = reverse("reporting:call_export")


def detail(call_id: str) -> str:
    return reverse("reporting:call_detail", args=[call_id])


def listed_ids(response) -> list[str]:
    """Call ids of the list's rows, in order (from their links)."""
    body = response.content.decode()
    if "<tbody>" not in body:
        return []
    rows = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [unquote(path) for path in re.findall(r'<a href="/calls/(.+?)/">', rows)]


def next_page_link(response) -> str | None:
    found = re.search(r'<a href="([^"]+)" hx-get="[^"]+" rel="next">', response.content.decode())
    return html.unescape(found.group(1)) if found else None


# --- who may read calls -----------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["list", "export", "detail"])
def test_admins_and_supervisors_read_calls(url_name: str, admin: Persona, supervisor: Persona) -> None:
    record = make_call(admin.center, call_id="c-1")
    url = {"list": LIST, "export": EXPORT, "detail": detail(record.call_id)}[url_name]
    for persona in (admin, supervisor):
        response = persona.client.get(url)
        assert response.status_code == 200, persona.membership.role
        body = b"".join(response.streaming_content) if url_name == "export" else response.content
        assert b"c-1" in body


@pytest.mark.parametrize("url_name", ["list", "export", "detail"])
def test_agents_are_refused(url_name: str, agent: Persona) -> None:
    # Agents have no portal pages beyond their profile: call records hold other agents' calls,
    # callers' numbers, recordings and transcripts.
    record = make_call(agent.center, call_id="c-1", answered_extension="1001", answered_by=agent.membership)
    url = {"list": LIST, "export": EXPORT, "detail": detail(record.call_id)}[url_name]
    response = agent.client.get(url)
    assert response.status_code == 403
    assert b"+15550000000" not in response.content


@pytest.mark.parametrize("url_name", ["list", "export", "detail"])
def test_anonymous_goes_to_login(url_name: str, anonymous: Client, acme: ContactCenter) -> None:
    record = make_call(acme, call_id="c-1")
    url = {"list": LIST, "export": EXPORT, "detail": detail(record.call_id)}[url_name]
    response = anonymous.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_htmx_request_gets_a_full_page_redirect(anonymous: Client, acme: ContactCenter) -> None:
    response = anonymous.get(LIST, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/calls/")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_other_centers_calls_are_invisible(admin: Persona, outsider: Persona) -> None:
    mine = make_call(admin.center, call_id="acme-call", from_number="+15551110000")
    theirs = make_call(outsider.center, call_id="globex-call", from_number="+15552220000")

    assert outsider.client.get(detail(mine.call_id)).status_code == 404
    listed = outsider.client.get(LIST)
    assert listed_ids(listed) == ["globex-call"]
    exported = b"".join(outsider.client.get(EXPORT).streaming_content).decode()
    assert "globex-call" in exported and "acme-call" not in exported
    # The same call id in two centers: each sees its own.
    make_call(outsider.center, call_id="acme-call", from_number="+15553330000")
    page = outsider.client.get(detail("acme-call")).content.decode()
    assert "+15553330000" in page and "+15551110000" not in page
    assert admin.client.get(detail(theirs.call_id)).status_code == 404


def test_the_navigation_shows_calls_to_readers_only(admin: Persona, agent: Persona) -> None:
    assert f'href="{LIST}"' in admin.client.get(reverse("dashboard")).content.decode()
    assert f'href="{LIST}"' not in agent.client.get(reverse("profile")).content.decode()


# --- the list ---------------------------------------------------------------------------------


def test_list_shows_every_column(admin: Persona) -> None:
    bot = make_bot(admin.center, "Billing bot")
    queue = make_queue(admin.center, "Billing queue")
    member = make_member(admin.center, Role.AGENT, email="ann@acme.example", extension="1002")
    member.user.full_name = "Ann Agent"
    member.user.save()
    record = make_call(
        admin.center,
        call_id="full",
        from_number="+15551234567",
        to_number="+15557654321",
        virtual_agent=bot,
        queue=queue,
        answered_by=member,
        answered_extension="1002",
        seconds=125,
        end_reason="agent_hangup",
        bot_outcome=BotOutcome.HANDED_OFF,
    )
    make_handoff(record, target_type=TargetType.QUEUE, state=HandoffState.COMPLETED)

    page = admin.client.get(LIST).content.decode()

    for text in (
        "2025-03-14 09:00:00",  # acme's timezone is UTC
        "Inbound",
        "+15551234567",
        "+15557654321",
        "Billing bot",
        "Handed off",
        "Billing queue",
        "Ann Agent",
        "2:05",
        "agent_hangup",
    ):
        assert text in page, text
    assert detail("full") in page


def test_list_times_and_dates_are_in_the_centers_timezone(admin: Persona) -> None:
    center = admin.center
    center.timezone = "America/New_York"
    center.save()
    # 02:30 UTC on the 15th is 22:30 on the 14th in New York (EDT, UTC-4, in late March).
    make_call(center, call_id="late-evening", started_at=datetime(2025, 3, 15, 2, 30, tzinfo=UTC))
    make_call(center, call_id="next-morning", started_at=datetime(2025, 3, 15, 13, 0, tzinfo=UTC))

    response = admin.client.get(LIST, {"date_from": "2025-03-14", "date_to": "2025-03-14"})

    assert listed_ids(response) == ["late-evening"]
    assert "2025-03-14 22:30:00" in response.content.decode()
    response = admin.client.get(LIST, {"date_from": "2025-03-15"})
    assert listed_ids(response) == ["next-morning"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "outbound"}, ["outbound"]),
        ({"direction": "inbound"}, ["handed-off", "plain"]),
        ({"handed_off": "true"}, ["handed-off"]),
        ({"handed_off": "false"}, ["plain", "outbound"]),
        ({"number": "444"}, ["outbound"]),  # in `to`
        ({"number": "+1 (555) 777"}, ["plain"]),  # separators ignored, in `from`
        ({"number": "nobody"}, []),
        ({"date_from": "2025-03-14", "date_to": "2025-03-14"}, ["handed-off", "plain"]),
        ({"date_to": "2025-03-13"}, ["outbound"]),
    ],
)
def test_each_filter(admin: Persona, params: dict[str, str], expected: list[str]) -> None:
    center = admin.center
    make_call(center, call_id="plain", from_number="+15557770000", started_at=T0)
    handed = make_call(center, call_id="handed-off", started_at=T0 + timedelta(minutes=5))
    make_handoff(handed)
    make_call(
        center,
        call_id="outbound",
        direction=Direction.OUTBOUND,
        from_number="+15559990000",
        to_number="+15554440000",
        started_at=T0 - timedelta(days=1),
    )

    response = admin.client.get(LIST, params)

    assert response.status_code == 200
    assert listed_ids(response) == expected


def test_virtual_agent_and_queue_filters(admin: Persona) -> None:
    center = admin.center
    billing, sales = make_bot(center, "Billing bot"), make_bot(center, "Sales bot")
    queue = make_queue(center, "Tier 2")
    make_call(center, call_id="billing", virtual_agent=billing)
    make_call(center, call_id="sales", virtual_agent=sales, queue=queue)

    assert listed_ids(admin.client.get(LIST, {"virtual_agent": billing.pk})) == ["billing"]
    assert listed_ids(admin.client.get(LIST, {"queue": queue.pk})) == ["sales"]
    assert listed_ids(admin.client.get(LIST, {"virtual_agent": billing.pk, "queue": queue.pk})) == []


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2025-02-30"},
        {"date_from": "yesterday"},
        {"date_from": "2025-03-15", "date_to": "2025-03-14"},
        {"date_to": "9999-12-31"},  # its day's end would overflow
        {"date_from": "0001-01-01"},
        {"direction": "sideways"},
        {"handed_off": "maybe"},
        {"virtual_agent": "not-a-uuid"},
        {"queue": "00000000-0000-0000-0000-000000000000"},
        {"after": "!!!"},
        {"after": "bm90IGpzb24"},  # base64 of "not json"
        {"after": "WyJub3QgYSBkYXRlIiwxXQ"},  # ["not a date",1]
        {"number": "x" * 500},
        {"number": "nul\x00byte"},
    ],
)
def test_invalid_filters_answer_400_with_the_errors(admin: Persona, params: dict[str, str]) -> None:
    make_call(admin.center, call_id="c-1")
    response = admin.client.get(LIST, params)
    assert response.status_code == 400
    assert "These filters cannot be applied" in response.content.decode()
    assert listed_ids(response) == []
    export = admin.client.get(EXPORT, params)
    assert export.status_code == 400
    assert not isinstance(export, StreamingHttpResponse)


def test_another_centers_bot_is_not_a_valid_filter(admin: Persona, outsider: Persona) -> None:
    foreign = make_bot(outsider.center, "Their bot")
    make_call(outsider.center, call_id="theirs", virtual_agent=foreign)
    response = admin.client.get(LIST, {"virtual_agent": foreign.pk})
    assert response.status_code == 400
    assert "Their bot" not in response.content.decode()


def _walk_pages(client: Client, params: dict[str, str] | None = None) -> list[list[str]]:
    pages, query = [], dict(params or {})
    for _ in range(20):
        response = client.get(LIST, query)
        assert response.status_code == 200
        pages.append(listed_ids(response))
        link = next_page_link(response)
        if link is None:
            return pages
        query = {key: values[0] for key, values in parse_qs(urlparse(link).query).items()}
        assert set(query) == {*(params or {}), "after"}
    raise AssertionError("pagination did not end")


def test_keyset_pages_walk_every_call_once_with_ties_and_unknown_starts(admin: Persona) -> None:
    center = admin.center
    # Three calls share each start time (ties broken by id), and two never reported their start.
    expected = []
    for minute in range(40):
        for _ in range(3):
            expected.append(make_call(center, started_at=T0 + timedelta(minutes=minute)))
    undated = [make_call(center, started_at=None) for _ in range(2)]
    expected.sort(key=lambda r: (r.started_at, r.pk), reverse=True)
    expected += sorted(undated, key=lambda r: r.pk, reverse=True)

    pages = _walk_pages(admin.client)

    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 22]
    assert [call_id for page in pages for call_id in page] == [r.call_id for r in expected]


def test_a_page_boundary_inside_a_tie_and_between_dated_and_undated(admin: Persona) -> None:
    center = admin.center
    tied = [make_call(center, started_at=T0) for _ in range(PAGE_SIZE + 3)]
    undated = make_call(center, started_at=None)
    pages = _walk_pages(admin.client)
    assert [call_id for page in pages for call_id in page] == [
        *(r.call_id for r in sorted(tied, key=lambda r: r.pk, reverse=True)),
        undated.call_id,
    ]
    assert len(pages) == 2


def test_pages_keep_the_filters(admin: Persona) -> None:
    center = admin.center
    for i in range(PAGE_SIZE + 5):
        make_call(center, started_at=T0 + timedelta(seconds=i), direction=Direction.OUTBOUND)
        make_call(center, started_at=T0 + timedelta(seconds=i))
    pages = _walk_pages(admin.client, {"direction": "outbound"})
    ids = [call_id for page in pages for call_id in page]
    assert len(ids) == PAGE_SIZE + 5
    assert set(CallRecord.objects.filter(call_id__in=ids).values_list("direction", flat=True)) == {"outbound"}


def test_htmx_filter_requests_get_only_the_list(admin: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    response = admin.client.get(LIST, {"number": "555"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="list"')
    assert "<html" not in body and "c-1" in body
    assert "HX-Request" in response["Vary"]
    # The export link in the swapped list carries the current filters.
    assert f"{EXPORT}?number=555" in body


def test_list_queries_do_not_grow_with_rows(admin: Persona, django_assert_max_num_queries) -> None:
    bot, queue = make_bot(admin.center), make_queue(admin.center)
    member = make_member(admin.center, Role.AGENT, extension="1003")
    for _ in range(30):
        make_call(admin.center, virtual_agent=bot, queue=queue, answered_by=member)
    # session + user, membership, switcher, bots and queues for the filter, the page (one index scan).
    with django_assert_max_num_queries(9):
        response = admin.client.get(LIST)
    assert len(listed_ids(response)) == 30


# --- CSV export -------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_streams_every_filtered_call_in_list_order(admin: Persona) -> None:
    center = admin.center
    records = [make_call(center, started_at=T0 + timedelta(seconds=i)) for i in range(1205)]
    make_call(center, call_id="outbound", direction=Direction.OUTBOUND)
    undated = make_call(center, started_at=None)

    response = admin.client.get(EXPORT, {"direction": "inbound"})

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="calls-acme-')
    # Streamed as produced: the header comes out before the records are read.
    chunks = iter(response.streaming_content)
    assert next(chunks).decode().startswith("call_id,started_at,direction,")
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert [row[0] for row in rows] == [r.call_id for r in reversed(records)]
    assert "outbound" not in {row[0] for row in rows} and undated.call_id not in {row[0] for row in rows}
    assert rows[0][1] == "2025-03-14T09:20:04+00:00"


def test_the_python_export_path_reads_rows_in_chunks_not_all_at_once(admin: Persona, monkeypatch) -> None:
    # The path every database but PostgreSQL takes (PostgreSQL's COPY: tests/reporting/test_call_exports.py),
    # called directly so that it runs on either.
    from reporting.exports.calls import call_rows

    seen: list[int] = []
    from django.db.models.query import QuerySet

    original = QuerySet.iterator

    def spy(self, chunk_size=None):
        seen.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    call = make_call(admin.center)
    rows = list(call_rows(CallRecord.objects.for_center(admin.center), ZoneInfo("UTC")))
    assert [row[0] for row in rows] == [call.call_id]
    assert seen == [500, 500]  # the dated part, then the undated part, each read in chunks


def test_export_columns(admin: Persona) -> None:
    bot = make_bot(admin.center, "Billing bot")
    make_call(
        admin.center,
        call_id="c-1",
        virtual_agent=bot,
        bot_outcome=BotOutcome.CONTAINED,
        bot_seconds=80.25,
        recording_url="https://rec.example/c-1.wav",
    )
    header, row = _csv(admin.client.get(EXPORT))
    values = dict(zip(header, row, strict=True))
    assert values["call_id"] == "c-1"
    assert values["virtual_agent"] == "Billing bot"
    assert values["outcome"] == "contained"
    assert values["duration_seconds"] == "90.0"
    assert values["bot_seconds"] == "80.2"
    assert values["queue_wait_seconds"] == ""
    assert values["recording_url"] == "https://rec.example/c-1.wav"
    # Numbers start with '+': quoted so a spreadsheet keeps them as text, not a formula.
    assert values["from"] == "'+15550000000"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("normal_hangup", "normal_hangup"),
        ("a=b", "a=b"),
    ],
)
def test_export_neutralises_formulas(admin: Persona, value: str, cell: str) -> None:
    make_call(admin.center, call_id="c-1", end_reason=value, from_number=value)
    header, row = _csv(admin.client.get(EXPORT))
    values = dict(zip(header, row, strict=True))
    assert values["end_reason"] == cell
    assert values["from"] == cell


# --- one call ---------------------------------------------------------------------------------


def _handed_off_call(center: ContactCenter) -> CallRecord:
    bot = make_bot(center, "Billing bot")
    queue = make_queue(center, "Billing queue")
    record = make_call(
        center,
        call_id="a84b4c76e66710@pc33.atlanta.example",
        virtual_agent=bot,
        queue=queue,
        bot_connected_at=T0 + timedelta(seconds=2),
        recording_url="https://recordings.example/a84b.wav",
    )
    refer_to = f"sip:{queue.extension.digits}@acme.voiso.com"
    make_handoff(
        record,
        virtual_agent=bot,
        refer_to=refer_to,
        context={"X-Intent": "billing_dispute", "X-Customer-Tier": "gold"},
        target_type=TargetType.QUEUE,
        target_ref=str(queue.pk),
        target_extension=queue.extension.digits,
        target_name="Billing queue",
        state=HandoffState.COMPLETED,
        requested_at=T0 + timedelta(seconds=40),
        accepted_at=T0 + timedelta(seconds=41),
        completed_at=T0 + timedelta(seconds=43),
        sip_status=202,
    )
    make_handoff(
        record,
        virtual_agent=bot,
        refer_to="sip:9999@acme.voiso.com",
        target_error="unknown_extension",
        state=HandoffState.FAILED,
        requested_at=T0 + timedelta(seconds=20),
        failed_at=T0 + timedelta(seconds=21),
        failure_reason="no such extension",
        sip_status=404,
    )
    make_event(center, record.call_id, "call.started", T0, direction="inbound", **{"from": "+15550000000"})
    make_event(center, record.call_id, "bot.connected", T0 + timedelta(seconds=2), virtual_agent=str(bot.pk))
    make_event(
        center,
        record.call_id,
        "handoff.requested",
        T0 + timedelta(seconds=40),
        refer_to=refer_to,
        headers={"X-Intent": "billing_dispute"},
    )
    make_event(center, record.call_id, "call.ended", T0 + timedelta(seconds=90), end_reason="hangup")
    return record


def test_call_page_shows_summary_timeline_handoffs_and_recording(admin: Persona) -> None:
    record = _handed_off_call(admin.center)

    response = admin.client.get(detail(record.call_id))

    page = response.content.decode()
    assert response.status_code == 200
    assert "a84b4c76e66710@pc33.atlanta.example" in page
    assert "Billing bot" in page and "Billing queue" in page
    # Timeline in order, with times from the start and each event's data.
    order = [
        page.index(f"<code>{kind}</code>")
        for kind in ("call.started", "bot.connected", "handoff.requested", "call.ended")
    ]
    assert order == sorted(order)
    assert "+2.0 s" in page and "+90.0 s" in page
    assert "&quot;billing_dispute&quot;" in page  # the event's data, escaped
    # Both handoffs with their states, targets, times and context.
    assert "Completed" in page and "Failed" in page
    assert "unknown_extension" in page and "no such extension" in page and "SIP 404" in page
    assert "X-Customer-Tier" in page and "gold" in page
    assert '<audio controls preload="none" src="https://recordings.example/a84b.wav">' in page


def test_call_page_shows_the_bots_transcript_and_summary(admin: Persona) -> None:
    record = make_call(admin.center, call_id="c-1")
    make_report(
        record,
        summary="Caller disputes a charge; wants a refund.",
        transcript=[
            {"role": "agent", "text": "Hello, how can I help?", "seconds": 0.5},
            {"role": "user", "text": "<b>I was charged twice</b>", "seconds": 4},
            "a malformed turn",
        ],
        recording_url="https://provider.example/rec.mp3",
    )
    page = admin.client.get(detail("c-1")).content.decode()
    assert "Caller disputes a charge; wants a refund." in page
    assert "Hello, how can I help?" in page
    assert "&lt;b&gt;I was charged twice&lt;/b&gt;" in page and "<b>I was charged" not in page
    assert "a malformed turn" in page
    # No recording from the SIP layer: the provider's is played.
    assert 'src="https://provider.example/rec.mp3"' in page


def test_call_page_without_reports_or_recording_says_so(admin: Persona) -> None:
    make_call(admin.center, call_id="bare", started_at=None, seconds=None)
    page = admin.client.get(detail("bare")).content.decode()
    assert "not reported yet" in page
    assert "No recording has been reported" in page
    assert "has not sent a post-call report" in page
    assert "<audio" not in page


def test_only_web_recording_urls_reach_the_player(admin: Persona) -> None:
    record = make_call(admin.center, call_id="c-1")
    # Stored values are validated at ingestion; the page does not rely on it.
    CallRecord.objects.filter(pk=record.pk).update(recording_url="javascript:alert(1)")
    page = admin.client.get(detail("c-1")).content.decode()
    assert "javascript:alert" not in page


@pytest.mark.parametrize(
    "call_id", ["abc/def", "id with spaces", "q?x=1#frag", "100%done", "..", "ünï@host;tag=1", "export.csv"]
)
def test_any_call_id_has_a_working_url(admin: Persona, call_id: str) -> None:
    make_call(admin.center, call_id=call_id)
    url = detail(call_id)
    assert "?" not in url and "#" not in url
    response = admin.client.get(url)
    assert response.status_code == 200
    assert response.context["record"].call_id == call_id
    # And the list links to it.
    assert url in admin.client.get(LIST).content.decode()


def test_unknown_call_is_404(admin: Persona) -> None:
    assert admin.client.get(detail("never-happened")).status_code == 404


def test_detail_queries_are_bounded(admin: Persona, django_assert_max_num_queries) -> None:
    record = _handed_off_call(admin.center)
    make_report(record, summary="s")
    with django_assert_max_num_queries(9):
        assert admin.client.get(detail(record.call_id)).status_code == 200
