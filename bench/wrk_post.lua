-- wrk script for bench/telephony_http.py: POST JSON, a distinct call_id per request,
-- status codes counted, one machine-readable summary line printed at the end.
--
-- Environment: WRK_MODE = minimal | route | refer, WRK_TOKEN (Bearer key, optional),
-- WRK_TO (dialled number, route), WRK_REFER_TO (refer), WRK_NONCE (run id, keeps call_ids unique).

local mode = os.getenv("WRK_MODE") or "minimal"
local token = os.getenv("WRK_TOKEN") or ""
local to = os.getenv("WRK_TO") or "+442079460018"
local refer_to = os.getenv("WRK_REFER_TO") or "<sip:4323@acme.voiso.com>"
local nonce = os.getenv("WRK_NONCE") or "0"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

function init(args)
   counter = 0
   statuses = {}
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

function request()
   counter = counter + 1
   local call_id = "bench-" .. nonce .. "-" .. tid .. "-" .. counter
   local body
   if mode == "route" then
      body = '{"call_id":"' .. call_id .. '","to":"' .. to .. '","from":"+442079460999"}'
   elseif mode == "refer" then
      body = '{"call_id":"' .. call_id .. '","refer_to":"' .. refer_to .. '"}'
   else
      body = '{"call_id":"' .. call_id .. '"}'
   end
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
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
      '"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status,
      table.concat(parts, ",")))
end
