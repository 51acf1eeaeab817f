-- wrk script for bench/events_http.py: one call event per POST, each call going through a handoff
-- story (started, bot, REFER, 202, NOTIFY 200, ended), ids unique per run; statuses counted and
-- one machine-readable summary line printed at the end (the shape bench/wrk_post.lua prints).
--
-- Environment: WRK_TOKEN (Bearer key), WRK_NONCE (run id), WRK_SLUG (contact center slug),
-- WRK_OFFSET (where each thread's sequence starts: a run that goes on with an earlier run's calls
-- starts where that one ended, which its summary line says as "next_offset").

local token = os.getenv("WRK_TOKEN") or ""
local nonce = os.getenv("WRK_NONCE") or "0"
local slug = os.getenv("WRK_SLUG") or "acme"
local offset = tonumber(os.getenv("WRK_OFFSET") or "0")

local threads = {}
local steps = {
   {"call.started", '{"direction":"inbound","from":"+447900100200","to":"+442079460018"}'},
   {"bot.connected", '{"virtual_agent":"7001"}'},
   {"handoff.requested", '{"virtual_agent":"7001","refer_to":"<sip:4323@' .. slug .. '.voiso.com>","headers":{"X-Intent":"billing"}}'},
   {"handoff.accepted", '{"sip_status":202}'},
   {"handoff.completed", '{"answered_by":"queue"}'},
   {"call.ended", '{"end_reason":"normal_clearing","hangup_by":"caller"}'},
}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

function init(args)
   counter = offset
   statuses = {}
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

-- Many calls in flight, each moving on slowly: a thread walks 1000 calls one step at a time, so
-- one call's next event comes 1000 requests later (as a switch reports calls seconds apart),
-- not while its previous event is still being stored.
local in_flight = 1000

function request()
   local n = counter
   counter = counter + 1
   local round = math.floor(n / (in_flight * #steps))
   local index = (n % in_flight) + round * in_flight
   local s = math.floor(n / in_flight) % #steps
   local step = steps[s + 1]
   local call_id = "bench-" .. nonce .. "-" .. tid .. "-" .. index
   local seconds = s * 7
   local body = '{"id":"' .. call_id .. "/" .. s .. '","type":"' .. step[1] ..
      '","call_id":"' .. call_id .. '","occurred_at":"2026-05-01T09:' ..
      string.format("%02d:%02d", math.floor(seconds / 60), seconds % 60) .. 'Z","data":' .. step[2] .. '}'
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   local next_offset = offset
   for _, thread in ipairs(threads) do
      next_offset = math.max(next_offset, thread:get("counter"))
      local counts = thread:get("statuses")
      for status, n in pairs(counts) do
         merged[status] = (merged[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(merged) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non_2xx_wrk":%d,' ..
      '"next_offset":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status, next_offset,
      table.concat(parts, ",")))
end
