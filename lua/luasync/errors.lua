-- luasync.errors: error tables, stack capture and the text luasync prints for errors.
--
-- Expected failures of async work reject with an error table {kind=, message=, ...}
-- whose __tostring is its message. Task failures keep the raw error value (usually
-- a "file:line: message" string) and carry their stack beside it, as a list of frames.
local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return e.message or e.kind or "error"
end
M.Error = Error

--- errors.new(kind, message, fields?) -> error table
function M.new(kind, message, fields)
  local e = fields or {}
  e.kind = kind
  e.message = message
  return setmetatable(e, Error)
end

function M.cancelled(reason)
  local msg = "cancelled"
  if reason ~= nil then msg = tostring(reason) end
  return setmetatable({ kind = "cancelled", cancelled = true, message = msg }, Error)
end

function M.timeout(message)
  return setmetatable({ kind = "timeout", message = message or "timed out" }, Error)
end

-- A short view of a table for error text, one level deep, keys in a fixed order: {1, 2, code = 5, name = "x"}.
local PEEK_MAX = 8
local function peek_value(v)
  local t = type(v)
  if t == "string" then
    if #v > 40 then v = v:sub(1, 40) .. "..." end
    return (string.format("%q", v):gsub("\\\n", "\\n"))
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return "{...}"
  end
  return t
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function peek(t)
  local parts, n = {}, 0
  while rawget(t, n + 1) ~= nil and n < PEEK_MAX do
    n = n + 1
    parts[n] = peek_value(rawget(t, n))
  end
  local keys, more = {}, rawget(t, n + 1) ~= nil
  for k in next, t do  -- the first 256 keys found, the first few of them in order
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then
      if #keys == 256 then
        more = true
        break
      end
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_order)
  for i, k in ipairs(keys) do
    if n + i > PEEK_MAX then
      more = true
      break
    end
    local name = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. peek_value(k) .. "]"
    parts[#parts + 1] = name .. " = " .. peek_value(rawget(t, k))
  end
  if more then parts[#parts + 1] = "..." end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- errors.describe(e) -> a one-line string for any error value
function M.describe(e)
  local t = type(e)
  if t == "string" then return e end
  if t == "table" then
    local mt = getmetatable(e)
    if type(mt) == "table" and mt.__tostring then
      -- a __tostring that fails must not turn a user error into a crash report
      local ok, text = pcall(tostring, e)
      if ok and type(text) == "string" then return text end
      return "(error object is a table value whose __tostring failed)"
    end
    -- (an __index that raises must not turn a user error into a crash report either)
    local ok, message, kind = pcall(function() return e.message, e.kind end)
    if ok and message ~= nil then
      if kind ~= nil then return tostring(kind) .. ": " .. tostring(message) end
      return tostring(message)
    end
    return "(error object is a table value: " .. peek(e) .. ")"
  end
  if e == nil then return "nil" end
  return tostring(e)
end

-- Frames from luasync's own Lua modules are left out of user-facing stacks.
local function internal(src)
  return src:sub(1, 13) == "@lua/luasync/" or src == "=[C]"
end

local TOP, BOTTOM = 30, 10  -- frames kept from each end of a deeper stack
local getinfo = debug.getinfo

-- debug.getinfo for capture's level lv: of co, or of the running coroutine counted from capture's caller.
local function frame_info(co, lv, what)
  if co then return getinfo(co, lv, what) end
  local info = getinfo(lv + 2, what)  -- past this function and capture (not a tail call: that would drop it)
  return info
end

--- errors.capture(level, co?) -> { {func=, file=, line=, async=false}, ... }
-- Captures the stack of the running coroutine (or of co) from `level` on. Of a stack deeper than
-- TOP + BOTTOM frames (deep recursion), the innermost TOP and the outermost BOTTOM are kept, with
-- a {func="...", skipped=N} entry between them.
function M.capture(level, co)
  local frames = {}
  local infos, n = {}, 0
  for lv = level, level + TOP + BOTTOM - 1 do
    local info = frame_info(co, lv, "Sln")
    if not info then break end
    n = n + 1
    infos[n] = info
  end
  local skipped, gap_at = 0, nil
  if n == TOP + BOTTOM and frame_info(co, level + n, "l") then
    local lo, hi = level + n, level + 2 * n  -- lo exists; find the deepest level
    while frame_info(co, hi, "l") do lo, hi = hi, hi * 2 end
    while hi - lo > 1 do
      local mid = math.floor((lo + hi) / 2)
      if frame_info(co, mid, "l") then lo = mid else hi = mid end
    end
    skipped = (lo - BOTTOM + 1) - (level + TOP)
    n = TOP
    for lv = lo - BOTTOM + 1, lo do
      n = n + 1
      infos[n] = frame_info(co, lv, "Sln")
    end
    gap_at = TOP + 1
  end
  for i, info in ipairs(infos) do
    if i == gap_at then frames[#frames + 1] = { func = "...", file = "...", line = 0, async = false, skipped = skipped } end
    local src = info.source or "?"
    if not internal(src) then
      local file = info.short_src or src
      local name = info.name
      -- A name comes from the calling line; a call made by luasync itself (a task
      -- body, a handler) names nothing the user wrote.
      local caller = infos[i + 1]
      if name and caller and internal(caller.source or "?") then name = nil end
      if not name then
        if info.what == "main" then name = "main chunk"
        else name = "<" .. file .. ":" .. tostring(info.linedefined or 0) .. ">" end
      end
      frames[#frames + 1] = { func = name, file = file, line = info.currentline or 0, async = false }
    end
  end
  return frames
end

--- errors.format(frames) -> "stack traceback:\n\t..." text
function M.format(frames)
  if not frames or #frames == 0 then return "" end
  local out = { "stack traceback:" }
  local was_async = false
  local last, repeats = nil, 0  -- a run of the same frame (deep recursion) prints once, then a count
  local function end_run()
    if repeats > 0 then out[#out + 1] = string.format("\t(%d more of the same)", repeats) end
    repeats = 0
  end
  for _, f in ipairs(frames) do
    if f.async and not was_async then
      end_run()
      last = nil
      out[#out + 1] = "  awaited at:"
    end
    was_async = f.async
    local line
    if f.skipped then
      line = string.format("\t... (%d frames)", f.skipped)
    elseif f.line and f.line > 0 then
      line = string.format("\t%s:%d: in %s", f.file, f.line, f.func)
    else
      line = string.format("\t%s: in %s", f.file, f.func)
    end
    if line == last then
      repeats = repeats + 1
    else
      end_run()
      out[#out + 1] = line
      last = line
    end
  end
  end_run()
  return table.concat(out, "\n")
end

--- errors.report(prefix, e, frames) -> full text for stderr
function M.report(prefix, e, frames)
  local text = (prefix or "") .. M.describe(e)
  local tb = M.format(frames)
  if tb ~= "" then text = text .. "\n" .. tb end
  return text .. "\n"
end

return M
