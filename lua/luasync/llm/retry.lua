-- luasync.llm.retry: how long to wait before retrying a failed LLM request.
--
-- Exponential backoff as the official SDKs do it: 0.5 s, 1 s, 2 s, ... capped at
-- 8 s, minus up to 25% jitter. A server's retry-after-ms (milliseconds) or
-- Retry-After (seconds or an HTTP date) wins when it asks for 0..60 s.
local tonumber, type, floor, min = tonumber, type, math.floor, math.min

local M = {}

M.BASE, M.CAP, M.MAX_SERVER_DELAY = 0.5, 8, 60

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
                 jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }

-- Seconds since the epoch of a UTC civil date (Howard Hinnant's days_from_civil).
local function epoch(y, m, d, hh, mm, ss)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + hh * 3600 + mm * 60 + ss
end

--- http_date(s) -> seconds since the epoch, or nil. IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
-- RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
function M.http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d then
    d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if d then
      y = tonumber(y)
      y = y + (y < 70 and 2000 or 1900)
    end
  end
  if not d then
    mon, d, hh, mm, ss, y = s:match("^%a+ (%a%a%a) +(%d%d?) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  end
  if not d then return nil end
  local m = MONTHS[mon:lower()]
  if not m then return nil end
  return epoch(tonumber(y), m, tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
end

--- server_delay(headers, now?) -> seconds the server asked to wait, or nil
function M.server_delay(headers, now)
  if type(headers) ~= "table" then return nil end
  local ms = tonumber(headers["retry-after-ms"])
  if ms then return ms / 1000 end
  local ra = headers["retry-after"]
  if ra == nil then return nil end
  local secs = tonumber(ra)
  if secs then return secs end
  local at = M.http_date(ra)
  if at then return at - (now or os.time()) end
  return nil
end

--- delay(retry, headers?, random?, now?) -> seconds to wait before retry number `retry` (1 = first retry)
function M.delay(retry, headers, random, now)
  local server = M.server_delay(headers, now)
  if server and server >= 0 and server <= M.MAX_SERVER_DELAY then return server end
  local d = min(M.BASE * 2 ^ (retry - 1), M.CAP)
  return d * (1 - 0.25 * (random or math.random)())
end

return M
