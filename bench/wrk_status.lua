-- wrk script: count responses by HTTP status code and print a
-- machine-readable summary line for bench/http.py.
--
-- Each wrk thread runs in its own Lua state, so the counts live in a global
-- of each thread; setup() keeps a handle on every thread and done() (which
-- runs in yet another state) collects them with thread:get(), as in wrk's
-- scripts/setup.lua. Defining response() makes wrk parse each response's
-- headers and body, which costs a little client CPU; the same script is used
-- for every target, so results stay comparable.
--
-- Output, after wrk's own report, one line:
--   TOKENPULSE_WRK {"requests":N,"duration_us":N,"bytes":N,
--                   "latency_us":{"min":N,"mean":N,"max":N,"stdev":N,
--                                 "p50":N,"p75":N,"p90":N,"p99":N,"p999":N},
--                   "errors":{"connect":N,"read":N,"write":N,"status":N,"timeout":N},
--                   "status":{"200":N,...}}

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   -- String keys: tables cross thread boundaries through thread:get(),
   -- and string keys are what the JSON line needs anyway.
   statuses = {}
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

local function number(n)
   -- Integers without a fractional part, other values with microsecond
   -- precision; never "nan"/"inf", which JSON cannot carry.
   if n ~= n or n == math.huge or n == -math.huge then
      return "null"
   end
   if n == math.floor(n) then
      return string.format("%d", n)
   end
   return string.format("%.3f", n)
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for code, count in pairs(counts) do
         totals[code] = (totals[code] or 0) + count
      end
   end

   local codes = {}
   for code, _ in pairs(totals) do
      table.insert(codes, code)
   end
   table.sort(codes)
   local status_parts = {}
   for _, code in ipairs(codes) do
      table.insert(status_parts, string.format('"%s":%d', code, totals[code]))
   end

   local e = summary.errors
   io.write(string.format(
      'TOKENPULSE_WRK {"requests":%s,"duration_us":%s,"bytes":%s,'
         .. '"latency_us":{"min":%s,"mean":%s,"max":%s,"stdev":%s,'
         .. '"p50":%s,"p75":%s,"p90":%s,"p99":%s,"p999":%s},'
         .. '"errors":{"connect":%s,"read":%s,"write":%s,"status":%s,"timeout":%s},'
         .. '"status":{%s}}\n',
      number(summary.requests), number(summary.duration), number(summary.bytes),
      number(latency.min), number(latency.mean), number(latency.max), number(latency.stdev),
      number(latency:percentile(50)), number(latency:percentile(75)),
      number(latency:percentile(90)), number(latency:percentile(99)),
      number(latency:percentile(99.9)),
      number(e.connect), number(e.read), number(e.write), number(e.status), number(e.timeout),
      table.concat(status_parts, ",")
   ))
end
