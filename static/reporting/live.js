// The Live page, kept current from /ws/live/ (reporting.consumers.LiveConsumer).
//
// State is keyed by call id and by call id + handoff sequence, so an event seen twice (on the
// socket and again in a catch-up) can never add a row twice; event ids are remembered as well
// so a replayed event is not even applied again. Every (re)connect is followed by a catch-up
// (GET live/events/?since=…) covering the time the socket was not there: the socket is joined
// before it opens, so anything published after the catch-up read arrives on it.
// The bot's summary arrives later as a report.ready message (see reporting.feed) and is shown
// under the call and its handoffs.
(function () {
  "use strict";

  const script = document.currentScript;
  const initial = JSON.parse(document.getElementById("live-state").textContent);
  const socketPath = script.dataset.socketPath;
  const catchUpUrl = script.dataset.catchUpUrl;
  const windowMs = initial.window_seconds * 1000;
  // The server's clock, as well as we can tell: windows and catch-up times are the server's.
  const clockOffset = Date.parse(initial.server_time) - Date.now();
  const serverNow = () => Date.now() + clockOffset;

  const STAGE_RANK = { requested: 0, accepted: 1, completed: 2, failed: 2 };
  const STAGE_LABEL = { requested: "Requested", accepted: "Accepted", completed: "Completed", failed: "Failed" };
  const DIRECTION_LABEL = { inbound: "Inbound", outbound: "Outbound" };
  const SEEN_FOR_MS = 10 * 60 * 1000;
  const HANDOFF_ROWS = 100;
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  const calls = new Map(); // call id → {call, agent, firstAt}
  const handoffs = new Map(); // "call id#sequence" → {handoff, call, agent}
  const agents = new Map(); // agent id → {id, name, extension}
  const seen = new Map(); // event id → when it was applied
  const summaries = new Map(); // call id → Map(report event id → summary)
  let agentFilter = initial.agent || "";
  let syncedAt = initial.server_time; // everything stored before this (less the server's margin) is here
  let socket = null;
  let isCaughtUp = false;
  let attempt = 0;
  let reconnectTimer = null;
  let renderQueued = false;

  const statusEl = document.getElementById("live-status");
  const select = document.getElementById("id_agent");
  for (const option of select ? select.options : []) {
    if (option.value) agents.set(option.value, { id: option.value, name: option.text, extension: "" });
  }

  // --- state ------------------------------------------------------------------------------

  const time = (iso) => (iso ? Date.parse(iso) : NaN);
  const firstOf = (...values) => values.find((v) => v !== null && v !== undefined && v !== "") ?? null;
  // When a call started: call.started's time, else when we first heard of it (events come in any order).
  const startOf = (entry) => {
    const started = time(entry.call.started_at);
    return Number.isNaN(started) ? time(entry.firstAt) : started;
  };

  // The bot a call is on now (null once it left: a completed handoff, the end). Not monotone
  // like the rest, so it comes from the later snapshot: the one folded from more events.
  function activeBot(old, next) {
    if (next.status === "ended" || old.status === "ended") return null;
    const later = (next.event_count || 0) >= (old.event_count || 0) ? next : old;
    return later.active_virtual_agent ?? null;
  }

  function mergeCall(old, next) {
    if (!old) return { ...next };
    // Snapshots can arrive out of order: keep whatever is furthest along.
    return {
      ...next,
      direction: firstOf(next.direction, old.direction) || "",
      from: firstOf(next.from, old.from) || "",
      to: firstOf(next.to, old.to) || "",
      status: old.status === "ended" || next.status === "ended" ? "ended" : next.status,
      bot_outcome: firstOf(next.bot_outcome, old.bot_outcome) || "",
      started_at: firstOf(next.started_at, old.started_at),
      ended_at: firstOf(next.ended_at, old.ended_at),
      handoff_count: Math.max(next.handoff_count || 0, old.handoff_count || 0),
      active_virtual_agent: activeBot(old, next),
      event_count: Math.max(next.event_count || 0, old.event_count || 0),
    };
  }

  function mergeHandoff(old, next) {
    if (!old) return { ...next };
    const [ahead, behind] = STAGE_RANK[next.state] >= STAGE_RANK[old.state] ? [next, old] : [old, next];
    const merged = { ...ahead };
    for (const key of ["requested_at", "accepted_at", "completed_at", "failed_at", "sip_status", "failure_reason"]) {
      merged[key] = firstOf(ahead[key], behind[key]);
    }
    if (!merged.target || !(merged.target.type || merged.target.error)) merged.target = behind.target;
    if (!merged.context || !Object.keys(merged.context).length) merged.context = behind.context;
    return merged;
  }

  function apply(message) {
    const eventId = message.event && message.event.id;
    // Before the seen check: a report's later summary comes with the same event id.
    if (typeof message.summary === "string" && message.summary && message.call && eventId) {
      const callId = message.call.call_id;
      if (!summaries.has(callId)) summaries.set(callId, new Map());
      summaries.get(callId).set(eventId, message.summary);
    }
    if (eventId) {
      if (seen.has(eventId)) return;
      seen.set(eventId, Date.now());
    }
    const agent = message.virtual_agent;
    if (agent && agent.id) agents.set(agent.id, agent);
    const call = message.call;
    if (call) {
      const entry = calls.get(call.call_id);
      calls.set(call.call_id, {
        call: mergeCall(entry && entry.call, call),
        // The call's bot is the first one it reached (as on the call record).
        agent: (entry && entry.agent) || agent || null,
        firstAt: (entry && entry.firstAt) || (message.event && message.event.occurred_at) || initial.server_time,
      });
    }
    if (message.handoff && call) {
      const key = `${call.call_id}#${message.handoff.sequence}`;
      const entry = handoffs.get(key);
      handoffs.set(key, {
        handoff: mergeHandoff(entry && entry.handoff, message.handoff),
        callId: call.call_id,
        agent: (entry && entry.agent) || agent || null,
      });
    }
  }

  function applyAll(messages) {
    for (const message of messages) apply(message);
    queueRender();
  }

  const matches = (agent) => !agentFilter || (agent && agent.id === agentFilter);

  function counters(now) {
    const since = now - windowMs;
    const result = { reached: 0, handed_off: 0, contained: 0, abandoned: 0, completed: 0, failed: 0 };
    for (const entry of calls.values()) {
      const { call, agent } = entry;
      if (!agent || !matches(agent)) continue;
      if (!(startOf(entry) >= since)) continue;
      result.reached += 1;
      if (call.bot_outcome === "handed_off") result.handed_off += 1;
      if (call.bot_outcome === "contained") result.contained += 1;
      if (call.bot_outcome === "abandoned_in_bot") result.abandoned += 1;
    }
    for (const { handoff, agent } of handoffs.values()) {
      if (!matches(agent)) continue;
      if (time(handoff.completed_at) >= since) result.completed += 1;
      if (time(handoff.failed_at) >= since) result.failed += 1;
    }
    return result;
  }

  function prune(now) {
    // Nothing older than the window is shown or counted; in-progress calls stay until they end.
    const since = now - windowMs;
    for (const [id, entry] of calls) {
      if (entry.call.status === "ended" && startOf(entry) < since) calls.delete(id);
    }
    for (const [key, entry] of handoffs) {
      if (time(entry.handoff.requested_at) < since - 60 * 60 * 1000) handoffs.delete(key);
    }
    for (const [id, at] of seen) if (Date.now() - at > SEEN_FOR_MS) seen.delete(id);
    const shown = new Set([...calls.keys(), ...[...handoffs.values()].map((entry) => entry.callId)]);
    for (const id of summaries.keys()) if (!shown.has(id)) summaries.delete(id);
  }

  // --- rendering (DOM nodes and textContent only: event data is never parsed as HTML) ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // 24-hour times in the contact center's time zone, as every other page shows them (the
  // browser's locale would pick 12-hour clocks and the viewer's own zone).
  const timeFormat = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: script.dataset.timeZone || "UTC",
  });
  const clock = (iso) => (iso ? el("time", { datetime: iso }, timeFormat.format(new Date(iso))) : "—");
  const muted = (text) => el("span", { class: "muted" }, text);

  const summaryNodes = (callId) =>
    [...(summaries.get(callId) || new Map()).values()].map((text) => el("p", { class: "summary", "data-role": "summary" }, text));

  function callRows(call) {
    const texts = summaryNodes(call.call_id);
    const row = el(
      "tr",
      { "data-call-id": call.call_id },
      el("td", null, call.from || "—"),
      el("td", null, call.to || "—"),
      el("td", null, DIRECTION_LABEL[call.direction] || "—"),
      el("td", null, clock(call.started_at)),
      el("td", null, call.handoff_count || 0),
    );
    if (!texts.length) return row;
    return [row, el("tr", { class: "live-summary", "data-summary-for": call.call_id }, el("td", { colspan: 5 }, texts))];
  }

  // Bot calls in progress: each call under the bot it is on now, as the server renders them.
  function callsByBot() {
    const groups = new Map();
    for (const { call } of calls.values()) {
      const botId = call.active_virtual_agent;
      if (call.status !== "in_progress" || !botId) continue;
      const agent = agents.get(botId) || { id: botId, name: "", extension: "" };
      if (!matches(agent)) continue;
      if (!groups.has(botId)) groups.set(botId, { agent, calls: [] });
      groups.get(botId).calls.push(call);
    }
    return groups;
  }

  function renderCalls() {
    const groups = callsByBot();
    const ordered = [...groups.values()].sort((a, b) => a.agent.name.localeCompare(b.agent.name));
    const sections = ordered.map(({ agent, calls: rows }) => {
      rows.sort((a, b) => (time(a.started_at) || 0) - (time(b.started_at) || 0));
      const headingId = `agent-${agent.id}`;
      return el(
        "section",
        { class: "live-agent card", "data-agent-id": agent.id, "aria-labelledby": headingId },
        el(
          "h3",
          { id: headingId },
          agent.name,
          agent.extension ? [" ", el("small", { class: "muted" }, `ext. ${agent.extension}`)] : null,
          " ",
          el("span", { class: "badge off", "data-role": "count" }, `${rows.length} in progress`),
        ),
        el(
          "table",
          null,
          el(
            "thead",
            null,
            el("tr", null, ["Caller", "Called", "Direction", "Started", "Handoffs"].map((h) => el("th", { scope: "col" }, h))),
          ),
          el("tbody", null, rows.map(callRows)),
        ),
      );
    });
    document.getElementById("live-calls").replaceChildren(...sections);
    document.getElementById("live-calls-empty").hidden = sections.length > 0;
  }

  function targetCell(handoff) {
    const target = handoff.target || {};
    if (target.name) {
      return [target.name, target.extension ? [" ", el("small", { class: "muted" }, `ext. ${target.extension}`)] : null];
    }
    if (target.error) return el("span", { class: "error-text" }, `${handoff.refer_to} (${target.error})`);
    return handoff.refer_to || "—";
  }

  // The context the bot passed: its X-headers on the REFER, then its summary once the report came.
  function contextCell(context, callId) {
    const entries = Object.entries(context || {});
    const texts = summaryNodes(callId);
    if (!entries.length && !texts.length) return muted("—");
    return [
      entries.length
        ? el("dl", { class: "changes" }, entries.map(([name, value]) => [el("dt", null, name), el("dd", null, String(value))]))
        : null,
      texts,
    ];
  }

  function resultCell(handoff) {
    if (handoff.failure_reason) {
      return handoff.sip_status ? `${handoff.failure_reason} (SIP ${handoff.sip_status})` : handoff.failure_reason;
    }
    return handoff.sip_status ? `SIP ${handoff.sip_status}` : muted("—");
  }

  function handoffRow(key, { handoff, callId, agent }) {
    const call = (calls.get(callId) || {}).call || {};
    const bot = agent ? (agents.get(agent.id) || agent).name : "—";
    return el(
      "tr",
      { "data-handoff-key": key, "data-state": handoff.state },
      el("td", null, handoff.requested_at ? clock(handoff.requested_at) : ""),
      el("td", null, el("span", { class: `stage stage-${handoff.state}` }, STAGE_LABEL[handoff.state] || handoff.state)),
      el("td", null, call.from || "—"),
      el("td", null, bot),
      el("td", null, targetCell(handoff)),
      el("td", null, contextCell(handoff.context, callId)),
      el("td", null, resultCell(handoff)),
    );
  }

  function renderHandoffs(now) {
    const since = now - windowMs;
    const rows = [...handoffs.entries()]
      .filter(([, entry]) => matches(entry.agent) && time(entry.handoff.requested_at) >= since)
      .sort(([, a], [, b]) => time(b.handoff.requested_at) - time(a.handoff.requested_at))
      .slice(0, HANDOFF_ROWS)
      .map(([key, entry]) => handoffRow(key, entry));
    document.querySelector("#live-handoffs tbody").replaceChildren(...rows);
    document.getElementById("live-handoffs-empty").hidden = rows.length > 0;
  }

  function renderCounters(now) {
    for (const [name, value] of Object.entries(counters(now))) {
      const cell = document.querySelector(`[data-counter="${name}"]`);
      if (cell && cell.textContent !== String(value)) cell.textContent = value;
    }
  }

  function render() {
    renderQueued = false;
    const now = serverNow();
    prune(now);
    renderCalls();
    renderHandoffs(now);
    renderCounters(now);
  }

  function queueRender() {
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(render);
    }
  }

  // --- connection -------------------------------------------------------------------------

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  async function catchUp() {
    const response = await fetch(`${catchUpUrl}?since=${encodeURIComponent(syncedAt)}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.status === 401) return stop(4401);
    const body = await response.json();
    if (response.status === 400 && body.error && body.error.code === "out_of_range") return location.reload();
    if (!response.ok) throw new Error(`catch-up answered ${response.status}`);
    // More than a replay should carry: the server-rendered state is the faster way back.
    if (body.is_truncated) return location.reload();
    applyAll(body.messages);
    syncedAt = body.server_time;
    isCaughtUp = true;
    attempt = 0;
    setStatus("live", "Live");
  }

  function stop(code) {
    if (code === 4401) {
      setStatus("stopped", "Your session has ended. ");
      statusEl.append(el("a", { href: `/accounts/login/?next=${encodeURIComponent(location.pathname)}` }, "Log in again"));
    } else {
      setStatus("stopped", "Your role has no access to the live feed.");
    }
  }

  function scheduleReconnect() {
    const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: not every page at once
    attempt += 1;
    setStatus("reconnecting", `Connection lost. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(connect, delay);
  }

  function connect() {
    reconnectTimer = null;
    setStatus("connecting", attempt ? "Reconnecting…" : "Connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${socketPath}`);
    socket = ws;
    ws.addEventListener("open", () => {
      catchUp().catch(() => ws.close()); // a failed catch-up is a failed connection: try again
    });
    ws.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data.type === "events" && Array.isArray(data.messages)) applyAll(data.messages);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socket = null;
      // Everything up to now arrived on the socket; the next catch-up starts here.
      if (isCaughtUp) syncedAt = new Date(serverNow()).toISOString();
      isCaughtUp = false;
      if (event.code === 4401 || event.code === 4403) return stop(event.code);
      scheduleReconnect();
    });
  }

  // --- filter -----------------------------------------------------------------------------

  if (select) {
    select.addEventListener("change", () => {
      agentFilter = select.value;
      const url = new URL(location.href);
      if (agentFilter) url.searchParams.set("agent", agentFilter);
      else url.searchParams.delete("agent");
      history.replaceState(null, "", url);
      const heading = document.getElementById("counters-title");
      const label = agentFilter ? ` · ${select.options[select.selectedIndex].text}` : "";
      heading.textContent = `Last ${initial.window_seconds / 60} minutes${label}`;
      queueRender();
    });
  }

  applyAll(initial.messages);
  setInterval(queueRender, 5000); // the window moves even when nothing happens
  window.addEventListener("online", () => {
    if (reconnectTimer !== null) {
      clearTimeout(reconnectTimer);
      connect();
    }
  });
  connect();
})();
