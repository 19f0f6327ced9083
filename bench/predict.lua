-- wrk script: POST /predict with a new id on every request (so every request stores a record).
-- Ids are unique per thread and per run: wrk's thread id, a run tag and a counter.
local counter = 0
local tag = os.getenv("RUN_TAG") or "run"
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"id": "%s-%d-%d", "observation": {"Age": 22.0, "Cabin": null, "Embarked": "S", "Fare": 7.25, ' ..
    '"Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1}}', tag, tid or 0, counter)
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d non2xx=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), summary.duration))
end
