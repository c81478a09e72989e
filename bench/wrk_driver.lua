-- wrk script of bench/api.py: one script for every scenario, set up from
-- the environment (wrk passes its own arguments through, we keep it simple).
--
--   BENCH_MODE      static | cycle | once
--                   static: the URL given to wrk (plus BENCH_METHOD/BODY)
--                   cycle:  BENCH_PREFIX .. id, cycling over BENCH_IDS_FILE
--                   once:   BENCH_PREFIX .. id, each id used at most once
--                           (ids are split between wrk's threads); when
--                           they run out, requests go to a missing id and
--                           so count as errors, and "exhausted" says so
--   BENCH_METHOD    GET (default), POST, DELETE ...
--   BENCH_BODY_FILE a file whose content is sent as a JSON body
--   BENCH_IDS_FILE  one id a line
--   BENCH_PREFIX    path to which the id is appended, e.g. /v1/devices/
--   BENCH_THREADS   wrk's -t, to split the ids
--
-- Every response that is not 2xx counts as an error. done() prints one line
-- "BENCH_RESULT {json}" with the counts and the latency percentiles (us).

local mode = os.getenv("BENCH_MODE") or "static"
local method = os.getenv("BENCH_METHOD") or "GET"
local prefix = os.getenv("BENCH_PREFIX") or "/"
local ids_file = os.getenv("BENCH_IDS_FILE")
local body_file = os.getenv("BENCH_BODY_FILE")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local missing_id = "00000000-0000-4000-8000-000000000000"

wrk.method = method
if body_file then
   local f = assert(io.open(body_file, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = "application/json"
end

-- Main state: hand each thread its index.
local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- Thread states.
errors = 0
exhausted = 0
statuses = {}
local ids = {}
local pos = 1

function init(args)
   if mode ~= "static" then
      local f = assert(io.open(assert(ids_file, "BENCH_IDS_FILE"), "r"))
      local i = 0
      for line in f:lines() do
         if line ~= "" then
            if mode == "cycle" or i % nthreads == tid then
               table.insert(ids, line)
            end
            i = i + 1
         end
      end
      f:close()
      if mode == "cycle" and #ids > 0 then
         pos = (tid * 997) % #ids + 1
      end
   end
end

if mode ~= "static" then
   request = function()
      local id
      if mode == "cycle" then
         id = ids[pos]
         pos = pos % #ids + 1
      else
         id = ids[pos]
         if id == nil then
            exhausted = exhausted + 1
            id = missing_id
         else
            pos = pos + 1
         end
      end
      return wrk.format(method, prefix .. id)
   end
end

response = function(status, headers, body)
   if status < 200 or status > 299 then
      errors = errors + 1
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
   end
end

function done(summary, latency, requests)
   local errs, exh = 0, 0
   local codes = {}
   for _, t in ipairs(threads) do
      errs = errs + (t:get("errors") or 0)
      exh = exh + (t:get("exhausted") or 0)
      local s = t:get("statuses") or {}
      for k, v in pairs(s) do
         codes[k] = (codes[k] or 0) + v
      end
   end
   local parts = {}
   for k, v in pairs(codes) do
      table.insert(parts, string.format('"%s": %d', k, v))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"non2xx": %d, "exhausted": %d, "statuses": {%s}, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, ' ..
      '"timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p95": %d, ' ..
      '"p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes, errs, exh,
      table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency.max,
      latency.mean))
end
