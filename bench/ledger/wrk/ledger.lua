-- wrk script for bench.ledger.http: load one ledger endpoint, report one JSON line.
--
--   wrk -s bench/ledger/wrk/ledger.lua URL -- IDS_FILE MODE PREFIX
--
-- IDS_FILE holds one account id per line. MODE is "transfer" (POST /transfers
-- between two random, distinct accounts, amount 1..100, a reference unique
-- to this run, variant and thread) or "account" (GET /accounts/{random id}).
-- done() prints "BENCH_JSON {...}" with the counts and the latency
-- percentiles (microseconds) that bench.ledger.http parses.

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

local ids = {}
local mode = "account"
local prefix = "bench"
local counter = 0

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         ids[#ids + 1] = line
      end
   end
   mode = args[2]
   prefix = args[3] .. "-t" .. tostring(thread_number or 0)
   math.randomseed(os.time() * 1000 + (thread_number or 0))
end

-- Keel and both twins verify the bench's token (BENCH_TOKEN); the ceiling ignores it.
local token = os.getenv("BENCH_TOKEN")
local json_headers = { ["Content-Type"] = "application/json" }
local read_headers = {}
if token then
   json_headers["Authorization"] = "Bearer " .. token
   read_headers["Authorization"] = "Bearer " .. token
end

function request()
   if mode == "transfer" then
      counter = counter + 1
      local source = math.random(#ids)
      local target = math.random(#ids - 1)
      if target >= source then
         target = target + 1
      end
      local body = string.format(
         '{"source_id":"%s","target_id":"%s","amount":%d,"reference":"%s-%d"}',
         ids[source], ids[target], math.random(1, 100), prefix, counter
      )
      return wrk.format("POST", "/transfers", json_headers, body)
   end
   return wrk.format("GET", "/accounts/" .. ids[math.random(#ids)], read_headers)
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
         .. '"status_errors":%d,"socket_errors":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      errors.status, errors.connect + errors.read + errors.write + errors.timeout
   ))
end
