"""The simulator gateway: no network but our own events API. The callee is played by the number.

Like VICIdial's test carrier, the called number's last digit decides what happens:

    0-5  a person answers and talks to the bot; on 0 and 1 the bot hands off to the campaign's queue,
         where one of its members answers 8 s later
    6    busy (SIP 486)
    7    no answer (480 after ringing)
    8    an answering machine picks up
    9    the call fails (SIP 503)

Each call's events go to `POST /api/v1/telephony/events` exactly as the SIP layer would send them,
at the moments they would happen (times multiplied by `time_scale`; 0 sends a call's whole story at
once, which tests use). Event ids derive from the call id, so a resent event is a duplicate.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from campaigns.gateways import Origination, OriginationError

logger = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/telephony/events"


@dataclass(frozen=True, slots=True)
class Step:
    after: float  # seconds after the dial
    type: str
    data: dict[str, Any]


def story(origination: Origination) -> list[Step]:
    """What the SIP layer would report for this number, in order."""
    started = Step(
        0.0,
        "call.started",
        {
            "direction": "outbound",
            "from": origination.caller_id,
            "to": origination.to,
            "campaign_id": origination.campaign_id,
            "lead_id": origination.lead_id,
        },
    )
    digit = origination.to[-1]
    if digit == "6":
        return [started, Step(2.0, "call.ended", {"end_reason": "busy", "sip_status": 486})]
    if digit == "7":
        return [started, Step(25.0, "call.ended", {"end_reason": "no_answer", "sip_status": 480})]
    if digit == "8":
        return [started, Step(6.0, "call.ended", {"end_reason": "machine", "hangup_by": "system"})]
    if digit == "9":
        return [started, Step(0.5, "call.ended", {"end_reason": "failed", "sip_status": 503})]
    bot = origination.virtual_agent_id
    connected = Step(5.0, "bot.connected", {"virtual_agent": bot})
    if digit in "01" and origination.handoff_extension:
        refer_to = f"sip:{origination.handoff_extension}@{origination.sip_domain}"
        steps = [
            started,
            connected,
            Step(25.0, "handoff.requested", {"virtual_agent": bot, "refer_to": refer_to}),
            Step(25.2, "handoff.accepted", {"sip_status": 202}),
            Step(40.0, "handoff.completed", {}),
        ]
        if origination.handoff_agents:  # a member of the queue answers after a wait
            agent = origination.handoff_agents[
                sum(map(ord, origination.call_id)) % len(origination.handoff_agents)
            ]
            steps.append(Step(48.0, "agent.connected", {"extension": agent}))
        return [*steps, Step(100.0, "call.ended", {"end_reason": "completed", "hangup_by": "caller"})]
    return [
        started,
        connected,
        Step(45.0, "call.ended", {"end_reason": "completed", "hangup_by": "bot"}),
    ]


class SimulatorGateway:
    """Places simulated calls: their events are posted by one background thread at their times."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key_for: Callable[[str], str],
        time_scale: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        tries: int = 7,
    ) -> None:
        """`api_key_for(contact_center_id)`: a telephony key of that center (events name no center)."""
        self.time_scale = time_scale
        self._client = httpx.Client(base_url=base_url, timeout=10.0, transport=transport)
        self._api_key_for = api_key_for
        self.tries = tries
        self._keys: dict[str, str] = {}
        self._clock = clock
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.posted = 0

    def originate(self, origination: Origination) -> None:
        origin = datetime.now(UTC)
        now = self._clock()
        scale = self.time_scale or 1.0  # sent at once, the story keeps its times
        events = [
            {
                "id": f"{origination.call_id}:{index}",
                "type": step.type,
                "call_id": origination.call_id,
                "occurred_at": (origin + timedelta(seconds=step.after * scale)).isoformat(),
                "data": step.data,
            }
            for index, step in enumerate(story(origination))
        ]
        center = origination.contact_center_id
        if center not in self._keys:
            self._keys[center] = self._api_key_for(center)
        if self.time_scale == 0:
            self._post(center, events)  # the whole story now: tests
            return
        with self._wake:
            for event, step in zip(events, story(origination), strict=True):
                due = now + step.after * self.time_scale
                heapq.heappush(self._due, (due, next(self._order), (center, event)))
            self._wake.notify()
        self._ensure_thread()

    def _post(self, center: str, events: list[dict[str, Any]]) -> None:
        """Sends with retries that outlast a dev server's start or reload (about 15 s in all)."""
        headers = {"Authorization": f"Bearer {self._keys[center]}"}
        for attempt in range(self.tries):
            try:
                response = self._client.post(EVENTS_PATH, json={"events": events}, headers=headers)
            except httpx.HTTPError as exc:
                error: str = type(exc).__name__
            else:
                if response.status_code == 202:
                    self.posted += len(events)
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise OriginationError(f"events refused: {response.status_code} {response.text[:200]}")
                error = str(response.status_code)
            if attempt + 1 < self.tries:
                time.sleep(min(0.25 * 2**attempt, 4.0))
        raise OriginationError(f"events API unreachable ({error})")

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="simulator-gateway", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closing and (not self._due or self._due[0][0] > self._clock()):
                    timeout = self._due[0][0] - self._clock() if self._due else None
                    self._wake.wait(timeout)
                if self._closing and not self._due:
                    return
                batches: dict[str, list[dict[str, Any]]] = {}
                while self._due and (self._due[0][0] <= self._clock() or self._closing):
                    center, event = heapq.heappop(self._due)[2]
                    batches.setdefault(center, []).append(event)
            for center, batch in batches.items():
                if self._closing:
                    _no_later_than_now(batch)
                try:
                    self._post(center, batch)
                except OriginationError as exc:
                    logger.warning("simulator gateway: %d events lost: %s", len(batch), exc)

    def close(self) -> None:
        """Ends the calls in progress at once (their remaining events, now), then stops."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.close()


def _no_later_than_now(events: list[dict[str, Any]]) -> None:
    """A story cut short ends now: its later events keep their order a microsecond apart."""
    now = datetime.now(UTC)
    for index, event in enumerate(events):
        moment = datetime.fromisoformat(event["occurred_at"])
        if moment > now:
            event["occurred_at"] = (now + timedelta(microseconds=index)).isoformat()
