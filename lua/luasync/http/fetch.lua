-- luasync.http.fetch: the fetch-like form of http.request (API.md section 7). Loaded by luasync.http:
-- require("luasync.http.fetch")(http) -> fetch.
--
-- fetch(url, opts) resolves as soon as the headers arrive, with a Response:
--   res.status, res.ok (200-299), res.headers, res.body (a Stream of chunks),
--   res:text() -> Promise of the whole body, res:json() -> Promise of the decoded body.
-- text() and json() read res.body; a body can be read once (res.bodyUsed).
local Promise = require("luasync.promise")
local async = require("luasync.async")
local errors = require("luasync.errors")

local spawn, await = async.spawn, Promise.await
local concat, pcall, error, setmetatable, type = table.concat, pcall, error, setmetatable, type

local Response = {}
Response.__index = Response
Response.__name = "luasync.Response"
Response.__tostring = function(r) return "Response(" .. tostring(r.status) .. ")" end

local function read_all(s)
  local parts, n = {}, 0
  local ok, e = pcall(function()
    while true do
      local c = s:read()
      if c == nil then return end
      n = n + 1
      parts[n] = c
    end
  end)
  if not ok then
    s:close()  -- cancelled or failed: abort the transfer
    error(e, 0)
  end
  if n == 1 then return parts[1] end
  return concat(parts, "", 1, n)
end

local function used()
  local p = Promise._new()
  Promise._reject(p, errors.new("type", "fetch: the response body was already read"))
  return p
end

--- res:text() -> Promise of the body as a string
function Response:text()
  if self.bodyUsed then return used() end
  self.bodyUsed = true
  return spawn(read_all, self.body)
end

local function decode(res)
  local text = await(res:text())
  return require("luasync.json").decode(text)
end

--- res:json() -> Promise of the decoded body (rejects with json.decode's error on invalid JSON)
function Response:json()
  if self.bodyUsed then return used() end
  return spawn(decode, self)
end

local function wrap(res)
  local status = res.status
  res.ok = status >= 200 and status < 300
  res.bodyUsed = false
  return setmetatable(res, Response)
end

return function(http)
  local request = http._request
  return function(url, opts)
    if type(url) ~= "string" then error("fetch: url is required", 2) end
    if opts ~= nil and type(opts) ~= "table" then error("fetch: options must be a table", 2) end
    return (request("fetch", opts, url, nil, nil, true, wrap, 2))  -- (not a tail call: error levels count this frame)
  end
end
