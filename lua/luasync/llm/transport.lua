-- luasync.llm.transport: the one place LLM calls reach the HTTP client.
--
-- request(spec) -> Promise of {status, headers, body}, spec as http.request takes it:
--   {method=, url=, headers=, body=, timeout=, stream=, framing="sse"|"ndjson"}
-- With stream=true and a framing, body is a Stream of SSE events {event=, data=, id=}
-- or NDJSON lines. Unit tests replace M.request with a fake.
local M = {}

function M.request(spec)
  return require("luasync.http").request(spec)
end

return M
