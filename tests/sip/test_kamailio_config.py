"""`manage.py kamailio_config`: what it writes, what it refuses, and that Kamailio takes the result."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from routing.management.commands.kamailio_config import render_config
from tests.sip.edge import kamailio_binary

KEY = "vbk_abcd1234_" + "x" * 32


def render(**overrides: object) -> str:
    options: dict[str, object] = {
        "listen": "127.0.0.1:5060",
        "api_url": "http://127.0.0.1:8000",
        "api_key": KEY,
        "sip_domain_suffix": "voiso.com",
        **overrides,
    }
    return render_config(**options)  # type: ignore[arg-type]


def test_the_settings_land_in_the_configuration() -> None:
    text = render(media_server="sip:media@10.0.0.9:5080", aliases=["edge.example.com"])
    assert "listen=udp:127.0.0.1:5060\n" in text
    assert '#!define API_ROUTE_URL "http://127.0.0.1:8000/api/v1/telephony/route"' in text
    assert '#!define API_REFER_URL "http://127.0.0.1:8000/api/v1/telephony/refer"' in text
    assert '#!define API_EVENTS_URL "http://127.0.0.1:8000/api/v1/telephony/events"' in text
    assert f'#!define API_HEADERS "Content-Type: application/json\\r\\nAuthorization: Bearer {KEY}"' in text
    assert '#!define OUR_DOMAIN_RE "^[a-z0-9-]+[.]voiso[.]com$"' in text
    assert '#!define MEDIA_SERVER "sip:media@10.0.0.9:5080"' in text
    assert 'alias="edge.example.com"' in text
    # Kamailio's own syntax reaches the file untouched by the template engine.
    assert "$(var(ev_key){s.sha256})" in text and "{%" not in text and "{{" not in text


def test_without_a_media_server_none_is_defined() -> None:
    text = render()
    assert "#!define MEDIA_SERVER" not in text
    assert "none: calls that need media are refused with 488" in text


def test_another_suffix_is_our_domain() -> None:
    assert '#!define OUR_DOMAIN_RE "^[a-z0-9-]+[.]sip[.]example[.]org$"' in render(
        sip_domain_suffix="sip.example.org"
    )


def test_events_are_queued_for_batch_posters_never_handed_to_an_async_worker() -> None:
    """A SIP worker must never wait for an event: they go into a shared-memory queue that rtimer
    processes drain in batches. Handed one by one to async workers, they went to a "default" group
    of one process, and once its socket filled every SIP worker blocked behind it (issue 16)."""
    text = render(event_workers=3, event_interval_ms=25, event_batch=200, event_queue_size=1000)
    assert "async_task_data" not in text
    assert 'modparam("mqueue", "mqueue", "name=events;size=1000")' in text
    assert 'modparam("rtimer", "timer", "name=events;interval=25000u;mode=3")' in text
    assert 'modparam("rtimer", "exec", "timer=events;route=EVENT_POSTER")' in text
    assert "#!define EVENT_BATCH 200\n" in text
    assert 'mq_add("events", "$var(ev_id)", "$var(ev)");' in text


def test_the_worker_groups_default_to_the_sizes_for_50_calls_a_second() -> None:
    text = render()
    assert "\nchildren=8\n" in text
    assert 'async_workers_group="name=api;workers=16"' in text
    assert "interval=20000u;mode=2" in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen": "localhost:5060"}, "not an IPv4 address"),
        ({"listen": "127.0.0.1"}, "expected IPv4:port"),
        ({"listen": "127.0.0.1:70000"}, "port out of range"),
        ({"api_url": "ftp://127.0.0.1"}, "expected http(s)://host[:port]"),
        ({"api_url": "http://127.0.0.1:8000/api"}, "without a path"),
        ({"api_url": 'http://a"b'}, "expected http(s)://host[:port]"),
        ({"api_key": 'abc"def\\nloadmodule "x.so"'}, "not one this portal issues"),
        ({"media_server": "media.example.com"}, "expected a sip: or sips: URI"),
        ({"media_server": 'sip:a"b@c'}, "expected a sip: or sips: URI"),
        ({"aliases": ["a b"]}, "expected host[:port]"),
        ({"sip_domain_suffix": "voiso..com"}, "is not a DNS name"),
        ({"children": 0}, "children: 1 to 64"),
        ({"api_workers": 65}, "api workers: 1 to 64"),
        ({"event_batch": 1001}, "event batch: 1 to 1000"),
        ({"event_interval_ms": 0}, "event interval: 1 to 1000 ms"),
        ({"event_queue_size": 10}, "event queue size: 100 to 1,000,000"),
    ],
)
def test_a_value_that_could_break_the_configuration_is_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(
        CommandError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        render(**overrides)


def test_the_command_writes_a_private_file(tmp_path: Path, settings) -> None:
    settings.SIP_DOMAIN_SUFFIX = "voiso.com"
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    output = tmp_path / "kamailio.cfg"
    call_command(
        "kamailio_config",
        "--listen",
        "127.0.0.1:5070",
        "--api-url",
        "https://portal.example.com",
        "--api-key-file",
        str(key_file),
        "-o",
        str(output),
    )
    text = output.read_text()
    assert "listen=udp:127.0.0.1:5070" in text and f"Bearer {KEY}" in text
    assert stat.S_IMODE(output.stat().st_mode) == 0o600  # it holds the API key


def test_a_missing_or_empty_key_file_is_refused(tmp_path: Path) -> None:
    args = ["--listen", "127.0.0.1:5060", "--api-url", "http://127.0.0.1:8000", "--api-key-file"]
    with pytest.raises(CommandError, match="No such file"):
        call_command("kamailio_config", *args, str(tmp_path / "absent"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(CommandError, match="does not hold one API key"):
        call_command("kamailio_config", *args, str(tmp_path / "empty"))


@pytest.mark.sip
@pytest.mark.parametrize("media_server", [None, "sip:media@127.0.0.1:5080"])
def test_kamailio_accepts_the_configuration(tmp_path: Path, media_server: str | None) -> None:
    config = tmp_path / "kamailio.cfg"
    config.write_text(render(media_server=media_server, log_stderror=True))
    binary = kamailio_binary()
    assert binary is not None
    done = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "config file ok" in done.stderr


def test_the_demo_line_is_added_once_and_follows_the_bot_port(acme) -> None:
    from routing.management.commands.sip_demo import BOT_EXTENSION, LINE, demo_line
    from routing.models import PhoneNumber
    from virtual_agents.models import VirtualAgent
    from voiso_byob.models import AuditEvent

    bot = demo_line(acme, "sip:sipp-bot@127.0.0.1:5070")
    assert (bot.sip_uri, bot.extension.digits, bot.is_enabled) == (
        "sip:sipp-bot@127.0.0.1:5070",
        BOT_EXTENSION,
        True,
    )
    number = PhoneNumber.objects.get(number=LINE)
    assert number.contact_center == acme
    audited = AuditEvent.objects.count()
    assert audited > 0  # created through the services, which audit

    again = demo_line(acme, "sip:sipp-bot@127.0.0.1:5070")
    assert again.pk == bot.pk and AuditEvent.objects.count() == audited  # nothing to change: no write
    moved = demo_line(acme, "sip:sipp-bot@127.0.0.1:5080")
    assert moved.pk == bot.pk and moved.sip_uri == "sip:sipp-bot@127.0.0.1:5080"
    assert VirtualAgent.objects.filter(contact_center=acme, name=bot.name).count() == 1
    assert PhoneNumber.objects.filter(number=LINE).count() == 1
