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

--- errors.describe(e) -> a one-line string for any error value
function M.describe(e)
  local t = type(e)
  if t == "string" then return e end
  if t == "table" then
    local mt = getmetatable(e)
    if mt and mt.__tostring then
      -- a __tostring that fails must not turn a user error into a crash report
      local ok, text = pcall(tostring, e)
      if ok and type(text) == "string" then return text end
      return "(error object is a table value whose __tostring failed)"
    end
    if e.message ~= nil then
      if e.kind ~= nil then return tostring(e.kind) .. ": " .. tostring(e.message) end
      return tostring(e.message)
    end
    return "(error object is a table value)"
  end
  if e == nil then return "nil" end
  return tostring(e)
end

-- Frames from luasync's own Lua modules are left out of user-facing stacks.
local function internal(src)
  return src:sub(1, 13) == "@lua/luasync/" or src == "=[C]"
end

--- errors.capture(level, co?) -> { {func=, file=, line=, async=false}, ... }
-- Captures the stack of the running coroutine (or of co) from `level` on.
function M.capture(level, co)
  local frames = {}
  local getinfo = debug.getinfo
  local infos = {}
  for lv = level, level + 40 do
    local info
    if co then info = getinfo(co, lv, "Sln") else info = getinfo(lv + 1, "Sln") end
    if not info then break end
    infos[#infos + 1] = info
  end
  for i, info in ipairs(infos) do
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
  for _, f in ipairs(frames) do
    if f.async and not was_async then out[#out + 1] = "  awaited at:" end
    was_async = f.async
    if f.line and f.line > 0 then
      out[#out + 1] = string.format("\t%s:%d: in %s", f.file, f.line, f.func)
    else
      out[#out + 1] = string.format("\t%s: in %s", f.file, f.func)
    end
  end
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
