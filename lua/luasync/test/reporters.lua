-- luasync.test.reporters: text, TAP and JUnit XML output for `luasync test`.
--
-- A reporter gets file_start(path), result(r) for every test and finish(summary).
-- r = { file=, name= (full name), status = "pass" | "fail" | "skip", time= (seconds),
--       message=, where= ("file:line" or nil), details = {lines} or nil }
-- summary = { passed=, failed=, skipped=, time=, files = { {path=, results={...}, time=} } }
local core = require("luasync.core")

local format, concat = string.format, table.concat

local M = {}

-- Output goes to stdout as it comes, or to the --output file at the end.
local function sink(output)
  if output == nil or output == "" then
    return function(s) core.write(1, s) end, function() return true end
  end
  local buf = {}
  return function(s) buf[#buf + 1] = s end, function()
    local f, err = io.open(output, "wb")
    if not f then
      core.write(2, "luasync test: cannot write " .. output .. ": " .. tostring(err) .. "\n")
      return false
    end
    f:write(concat(buf))
    f:close()
    return true
  end
end

--- "N passed, N failed" plus ", N skipped" when N > 0
function M.counts_line(s)
  local line = format("%d passed, %d failed", s.passed, s.failed)
  if s.skipped > 0 then line = line .. format(", %d skipped", s.skipped) end
  return line
end

-- "where: message", unless there is no location.
local function headline(r)
  if r.where then return r.where .. ": " .. (r.message or "") end
  return r.message or ""
end
M.headline = headline

---------------------------------------------------------------------------
-- text

function M.text(opts)
  local out, close = sink(opts.output)
  local color = opts.color
  local function paint(code, s)
    if not color then return s end
    return "\27[" .. code .. "m" .. s .. "\27[0m"
  end
  local rep = {}
  local header  -- printed before the file's first result (--filter may select none)
  function rep.file_start(path) header = path end
  function rep.result(r)
    if header then out(header .. "\n"); header = nil end
    if r.status == "pass" then
      out("  " .. paint("32", "PASS") .. "  " .. r.name .. "\n")
    elseif r.status == "skip" then
      out("  " .. paint("33", "SKIP") .. "  " .. r.name .. "\n")
    else
      local lines = { "  " .. paint("31", "FAIL") .. "  " .. r.name }
      local pad = "        "
      for line in (headline(r) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = pad .. line end
      for _, d in ipairs(r.details or {}) do
        for line in (d .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = pad .. line end
      end
      out(concat(lines, "\n") .. "\n")
    end
  end
  function rep.finish(s)
    local failed = {}
    for _, f in ipairs(s.files) do
      for _, r in ipairs(f.results) do
        if r.status == "fail" then failed[#failed + 1] = "  " .. f.path .. ": " .. r.name end
      end
    end
    if #failed > 0 then
      out("\nFailed:\n" .. concat(failed, "\n") .. "\n")
    end
    out("\n" .. M.counts_line(s) .. "\n")
    return close()
  end
  return rep
end

---------------------------------------------------------------------------
-- TAP version 13 (the plan comes last: files are loaded one at a time)

local function yaml_string(s)
  s = tostring(s):gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == '"' or c == "\\" then return "\\" .. c end
    return format("\\x%02x", c:byte())
  end)
  return '"' .. s .. '"'
end

function M.tap(opts)
  local out, close = sink(opts.output)
  local n = 0
  local rep = {}
  out("TAP version 13\n")
  local header
  function rep.file_start(path) header = path end
  function rep.result(r)
    if header then out("# " .. header .. "\n"); header = nil end
    n = n + 1
    local desc = r.name:gsub("\n", " "):gsub("\\", "\\\\"):gsub("#", "\\#")
    if r.status == "pass" then
      out(format("ok %d - %s\n", n, desc))
    elseif r.status == "skip" then
      out(format("ok %d - %s # SKIP pending\n", n, desc))
    else
      local lines = { format("not ok %d - %s", n, desc), "  ---", "  message: " .. yaml_string(r.message or "") }
      if r.where then lines[#lines + 1] = "  at: " .. yaml_string(r.where) end
      if r.details and #r.details > 0 then
        lines[#lines + 1] = "  details: |"
        for _, d in ipairs(r.details) do
          for line in (d .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = "    " .. line end
        end
      end
      lines[#lines + 1] = "  ..."
      out(concat(lines, "\n") .. "\n")
    end
  end
  function rep.finish(s)
    out("# " .. M.counts_line(s) .. "\n")
    out(format("1..%d\n", n))
    return close()
  end
  return rep
end

---------------------------------------------------------------------------
-- JUnit XML

-- Escapes for attributes and text; drops what XML 1.0 cannot hold (control
-- characters, invalid UTF-8), replacing it with U+FFFD.
local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;",
              ["\n"] = "&#10;", ["\r"] = "&#13;", ["\t"] = "&#9;" }
local REPLACEMENT = "\239\191\189"

local function valid_utf8(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
                or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    if ok then
      for j = i + 1, i + len - 1 do
        local b = s:byte(j)
        if b < 0x80 or b > 0xBF then ok = false break end
      end
      if ok and len == 3 then
        local b = s:byte(i + 1)
        if (c == 0xE0 and b < 0xA0) or (c == 0xED and b > 0x9F) then ok = false end
      elseif ok and len == 4 then
        local b = s:byte(i + 1)
        if (c == 0xF0 and b < 0x90) or (c == 0xF4 and b > 0x8F) then ok = false end
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = REPLACEMENT
      i = i + 1
    end
  end
  return concat(out)
end

local function xml(s, in_text)
  s = tostring(s)
  if s:find("[\128-\255]") then s = valid_utf8(s) end
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", REPLACEMENT)
  if in_text then return (s:gsub("[&<>]", ESC)) end
  return (s:gsub("[&<>\"'\n\r\t]", ESC))
end
M.xml_escape = xml

-- "tests/lua/foo_spec.lua" -> "tests.lua.foo_spec"
local function classname(path)
  return (path:gsub("^%./", ""):gsub("%.lua$", ""):gsub("[/\\]", "."))
end

-- One <testsuite> for a test file.
local function suite(f)
  local nf, ns = 0, 0
  for _, r in ipairs(f.results) do
    if r.status == "fail" then nf = nf + 1 elseif r.status == "skip" then ns = ns + 1 end
  end
  local lines = { format('  <testsuite name="%s" tests="%d" failures="%d" errors="0" skipped="%d" time="%.3f">',
                         xml(f.path), #f.results, nf, ns, f.time or 0) }
  local cls = xml(classname(f.path))
  for _, r in ipairs(f.results) do
    local open = format('    <testcase classname="%s" name="%s" time="%.3f"', cls, xml(r.name), r.time or 0)
    if r.status == "pass" then
      lines[#lines + 1] = open .. "/>"
    elseif r.status == "skip" then
      lines[#lines + 1] = open .. '>\n      <skipped message="pending"/>\n    </testcase>'
    else
      local body = { headline(r) }
      for _, d in ipairs(r.details or {}) do body[#body + 1] = d end
      lines[#lines + 1] = open .. format('>\n      <failure message="%s" type="%s">%s</failure>\n    </testcase>',
                                         xml(headline(r)), xml(r.kind or "failure"), xml(concat(body, "\n"), true))
    end
  end
  lines[#lines + 1] = "  </testsuite>"
  return concat(lines, "\n")
end

function M.junit(opts)
  local out, close = sink(opts.output)
  local rep = {}
  function rep.file_start() end
  function rep.result() end
  function rep.finish(s)
    local lines = { '<?xml version="1.0" encoding="UTF-8"?>' }
    lines[#lines + 1] = format('<testsuites name="luasync" tests="%d" failures="%d" errors="0" skipped="%d" time="%.3f">',
                               s.passed + s.failed + s.skipped, s.failed, s.skipped, s.time)
    for _, f in ipairs(s.files) do
      if #f.results > 0 then lines[#lines + 1] = suite(f) end  -- --filter may select none
    end
    lines[#lines + 1] = "</testsuites>"
    out(concat(lines, "\n") .. "\n")
    return close()
  end
  return rep
end

return M
