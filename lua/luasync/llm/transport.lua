-- luasync.llm.transport: the one place LLM calls reach the HTTP client.
--
-- request(spec) -> Promise of {status, headers, body}, spec as http.request takes it:
--   {method=, url=, headers=, body=, timeout=, stream=, framing="sse"|"ndjson", deltas="openai"|"anthropic"|nil}
-- With stream=true and a framing, body is a Stream of SSE events {event=, data=, id=}
-- or NDJSON lines; with deltas, a plain text delta of that provider after the first
-- event is its text alone (a string). Unit tests replace M.request with a fake.
local M = {}

local http  -- luasync.http, loaded on the first request

-- call.lua makes one headers table per client and kind of call and never changes it: each is checked (and turned
-- into curl's header lines) once, not per request.
local prepared = setmetatable({}, { __mode = "k" })

function M.request(spec)
  http = http or require("luasync.http")
  local headers = spec.headers
  if headers ~= nil then
    local p = prepared[headers]
    if p == nil then
      p = http._prepare_headers("http.request", headers)
      prepared[headers] = p
    end
    spec.headers = p
  end
  return (http._request("http.request", spec, nil, nil, nil, nil, nil, 2, spec.deltas))
end

return M
