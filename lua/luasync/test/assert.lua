-- luasync.test.assert: the `assert` table of `luasync test` (API.md section 9).
--
-- `assert(v, msg)` keeps Lua's own behaviour; assert.equals, assert.same, ...
-- raise an AssertionError that records the test file's line (the first stack
-- frame outside luasync's own modules), the expected and actual values, and
-- for tables the path of the first difference.
local errors = require("luasync.errors")
local Promise = require("luasync.promise")

local type, tostring, pairs, next, rawequal, getmetatable, pcall, select =
  type, tostring, pairs, next, rawequal, getmetatable, pcall, select
local format, concat, sort = string.format, table.concat, table.sort
local lua_assert = assert

local M = {}

---------------------------------------------------------------------------
-- Showing values

local function show_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    if c == '"' or c == "\\" then return "\\" .. c end
    return format("\\%d", c:byte())
  end)
  return '"' .. s .. '"'
end

local function show_number(n)
  if n ~= n then return "nan" end
  if n == math.huge then return "inf" end
  if n == -math.huge then return "-inf" end
  if n % 1 == 0 and n > -2^53 and n < 2^53 then return format("%d", n) end
  local s = format("%.14g", n)
  if tonumber(s) ~= n then s = format("%.17g", n) end
  return s
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

-- Keys in a stable order: 1..n first, then the rest by type and text.
local function sorted_keys(t)
  local keys, n = {}, 0
  local len = #t
  for k in next, t do
    if not (type(k) == "number" and k >= 1 and k <= len and k % 1 == 0) then
      n = n + 1
      keys[n] = k
    end
  end
  sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local out = {}
  for i = 1, len do out[i] = i end
  for i = 1, n do out[len + i] = keys[i] end
  return out
end

local MAX_ITEMS, MAX_DEPTH = 20, 4

local show
local function show_table(t, depth, seen)
  local mt = getmetatable(t)
  if mt and mt.__tostring then return tostring(t) end
  if seen[t] then return "<cycle>" end
  if depth > MAX_DEPTH then return "{...}" end
  seen[t] = true
  local parts = {}
  local keys = sorted_keys(t)
  local len = #t
  for i, k in ipairs(keys) do
    if i > MAX_ITEMS then
      parts[#parts + 1] = "..."
      break
    end
    local v = show(t[k], depth + 1, seen)
    if type(k) == "number" and k <= len then
      parts[#parts + 1] = v
    elseif is_identifier(k) then
      parts[#parts + 1] = k .. " = " .. v
    else
      parts[#parts + 1] = "[" .. show(k, depth + 1, seen) .. "] = " .. v
    end
  end
  seen[t] = nil
  return "{" .. concat(parts, ", ") .. "}"
end

--- show(v) -> a one-line, Lua-like text for any value
show = function(v, depth, seen)
  local tv = type(v)
  if tv == "string" then return show_string(v) end
  if tv == "number" then return show_number(v) end
  if tv == "table" then return show_table(v, depth or 1, seen or {}) end
  return tostring(v)
end
M.show = show

---------------------------------------------------------------------------
-- Deep comparison

local function path_of(keys)
  local out = {}
  for i, k in ipairs(keys) do
    if type(k) == "number" then out[i] = "[" .. show_number(k) .. "]"
    elseif is_identifier(k) then out[i] = (i == 1 and "" or ".") .. k
    else out[i] = "[" .. show(k) .. "]" end
  end
  return concat(out)
end

-- Returns nil when a and b are deeply equal, else path, a_value, b_value of
-- the first difference (keys of a in order, then keys only b has).
local function first_diff(a, b, keys, seen)
  if rawequal(a, b) then return nil end
  if type(a) ~= "table" or type(b) ~= "table" then
    if a ~= a and b ~= b then return nil end  -- nan is the same as nan here
    return keys, a, b
  end
  local sa = seen[a]
  if sa and sa[b] then return nil end  -- already being compared (cycle)
  if not sa then sa = {}; seen[a] = sa end
  sa[b] = true
  local depth = #keys + 1
  for _, k in ipairs(sorted_keys(a)) do
    keys[depth] = k
    local p, x, y = first_diff(a[k], b[k], keys, seen)
    if p then return p, x, y end
  end
  for _, k in ipairs(sorted_keys(b)) do
    if a[k] == nil and b[k] ~= nil then
      keys[depth] = k
      return keys, nil, b[k]
    end
  end
  keys[depth] = nil
  return nil
end

--- deep_diff(expected, actual) -> nil if equal, else "at path: expected x, got y" text
function M.deep_diff(expected, actual)
  local keys, x, y = first_diff(expected, actual, {}, {})
  if not keys then return nil end
  local text = format("expected %s, got %s", show(x), show(y))
  if #keys > 0 then text = "at " .. path_of(keys) .. ": " .. text end
  return text
end

---------------------------------------------------------------------------
-- AssertionError

local AssertionError = {}
AssertionError.__index = AssertionError
AssertionError.__tostring = function(e)
  if e.where then return e.where .. ": " .. e.message end
  return e.message
end
M.AssertionError = AssertionError

-- Sources of luasync's own modules ("@lua/luasync/" when embedded or loaded
-- from the source tree), so the reported line is the caller's.
local own_prefix = debug.getinfo(1, "S").source:match("^(.*)test/assert%.lua$") or "@lua/luasync/"

--- where(level) -> "file:line" of the first frame outside luasync's modules
local function where(level)
  for lv = level + 1, level + 30 do
    local info = debug.getinfo(lv, "Sl")
    if not info then break end
    local src = info.source or ""
    if info.what ~= "C" and src:sub(1, #own_prefix) ~= own_prefix and src:sub(1, 13) ~= "@lua/luasync/" then
      return info.short_src .. ":" .. (info.currentline or 0)
    end
  end
  return nil
end
M.where = where

local function fail(message, details, user_msg)
  if user_msg ~= nil then message = tostring(user_msg) .. ": " .. message end
  error(setmetatable({ message = message, details = details, where = where(2) }, AssertionError), 0)
end

function M.is_assertion(e)
  return getmetatable(e) == AssertionError
end

---------------------------------------------------------------------------
-- The assertions

function M.equals(expected, actual, msg)
  if expected == actual or (expected ~= expected and actual ~= actual) then return end
  local details
  if type(expected) == "table" and type(actual) == "table" and M.deep_diff(expected, actual) == nil then
    details = { "the tables are deeply equal but not the same table (use assert.same)" }
  end
  fail(format("expected %s, got %s", show(expected), show(actual)), details, msg)
end

function M.not_equals(unexpected, actual, msg)
  if unexpected ~= actual then return end
  fail(format("expected a value other than %s", show(actual)), nil, msg)
end

function M.same(expected, actual, msg)
  local d = M.deep_diff(expected, actual)
  if d == nil then return end
  local details
  if type(expected) == "table" or type(actual) == "table" then
    details = { "expected: " .. show(expected), "actual:   " .. show(actual) }
  end
  fail(d, details, msg)
end

function M.not_same(unexpected, actual, msg)
  if M.deep_diff(unexpected, actual) ~= nil then return end
  fail("expected a value not deeply equal to " .. show(actual), nil, msg)
end

function M.truthy(v, msg)
  if v then return v end
  fail("expected a truthy value, got " .. show(v), nil, msg)
end

function M.falsy(v, msg)
  if not v then return end
  fail("expected a falsy value, got " .. show(v), nil, msg)
end

function M.is_true(v, msg)
  if v == true then return end
  fail("expected true, got " .. show(v), nil, msg)
end

function M.is_false(v, msg)
  if v == false then return end
  fail("expected false, got " .. show(v), nil, msg)
end

function M.is_nil(v, msg)
  if v == nil then return end
  fail("expected nil, got " .. show(v), nil, msg)
end

function M.is_not_nil(v, msg)
  if v ~= nil then return v end
  fail("expected a value other than nil", nil, msg)
end

function M.matches(pattern, s, msg)
  if type(s) == "string" and s:find(pattern) then return end
  fail(format("expected a string matching %s, got %s", show(pattern), show(s)), nil, msg)
end

function M.fail(msg)
  fail(msg == nil and "failed" or tostring(msg))
end

local function message_of(e)
  return errors.describe(e)
end

local function check_text(what, e, text)
  if text == nil then return end
  local m = message_of(e)
  if m:find(tostring(text), 1, true) then return end
  fail(format("expected %s containing %s, got %s", what, show(tostring(text)), show(m)))
end

--- assert.has_error(fn, text?) -> the error value
function M.has_error(fn, text)
  if type(fn) ~= "function" and not (getmetatable(fn) and getmetatable(fn).__call) then
    fail("assert.has_error: expected a function, got " .. show(fn))
  end
  local ok, e = pcall(fn)
  if ok then fail("expected an error, got none") end
  check_text("an error", e, text)
  return e
end

--- assert.rejects(promise_or_fn, text?) -> the rejection reason (awaits)
function M.rejects(x, text)
  local ok, v
  if type(x) == "function" or (type(x) == "table" and getmetatable(x) and getmetatable(x).__call
                               and not Promise.is(x)) then
    ok, v = pcall(function() return Promise.await(x()) end)
  elseif type(x) == "table" then
    ok, v = pcall(Promise.await, x)
  else
    fail("assert.rejects: expected a promise or a function, got " .. show(x))
  end
  if ok then fail("expected a rejection, got fulfilled with " .. show(v)) end
  check_text("a rejection", v, text)
  return v
end

-- busted-style aliases
M.equal, M.are_equal, M.is_equal = M.equals, M.equals, M.equals
M.are_same, M.is_same = M.same, M.same
M.is_truthy, M.is_falsy = M.truthy, M.falsy
M.has_errors, M.errors = M.has_error, M.has_error
M.match = M.matches

-- assert(v, msg, ...) is Lua's assert.
return setmetatable(M, {
  __call = function(_, ...) return lua_assert(...) end,
})
