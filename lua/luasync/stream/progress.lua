-- luasync.stream.progress: s:progress{label=, total=}. Draws a one-line bar on
-- stderr (count, rate, ETA when total is known) at most every 100 ms, and a
-- final line at the end; values pass through unchanged. When stderr is not a
-- TTY it returns the stream itself, so it costs nothing.
local core = require("luasync.core")

local floor, format = math.floor, string.format
local WIDTH = 24
local INTERVAL = 0.1  -- seconds between redraws

local function duration(s)
  if s < 9.95 then return format("%.1fs", s) end
  s = floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return format("%dm%02ds", floor(s / 60), s % 60) end
  return format("%dh%02dm", floor(s / 3600), floor(s / 60) % 60)
end

local function rate_text(r)
  if r >= 100 then return format("%d/s", floor(r + 0.5)) end
  return format("%.1f/s", r)
end

--- progress.line(label, n, total, elapsed_s, final) -> the text of one bar (for tests)
local function line(label, n, total, elapsed, final)
  local rate = elapsed > 0 and n / elapsed or 0
  local parts = {}
  if label and label ~= "" then parts[#parts + 1] = tostring(label) end
  if total and total > 0 then
    local frac = n / total
    if frac > 1 then frac = 1 end
    local fill = floor(frac * WIDTH + 0.5)
    parts[#parts + 1] = "[" .. string.rep("#", fill) .. string.rep("-", WIDTH - fill) .. "]"
    parts[#parts + 1] = format("%3d%%", floor(frac * 100))
    parts[#parts + 1] = n .. "/" .. total
  else
    parts[#parts + 1] = tostring(n)
  end
  parts[#parts + 1] = rate_text(rate)
  if final then
    parts[#parts + 1] = "in " .. duration(elapsed)
  elseif total and total > 0 and rate > 0 and n < total then
    parts[#parts + 1] = "ETA " .. duration((total - n) / rate)
  end
  return table.concat(parts, " ")
end

-- The clock is read every `step` values, with step adapted so that reads
-- happen about every 10 ms: a fast stream does not pay a C call per value.
local function progress(s, opts)
  if type(opts) ~= "table" then error("Stream.progress: expected a table {label=, total=}", 3) end
  if not core.isatty(2) then return s end
  local hrtime = core.hrtime
  local label, total = opts.label, tonumber(opts.total)
  local n = 0
  local t0, last, checked = nil, 0, 0
  local step, next_check = 1, 1
  local finished = false
  local function draw(final)
    local now = hrtime()
    last = now
    core.write(2, "\r\27[K" .. line(label, n, total, now - t0, final) .. (final and "\n" or ""))
  end
  local function tick()
    local now = hrtime()
    if now - checked < 0.01 then
      if step < 64 then step = step * 2 end
    elseif step > 1 then step = step / 2 end
    checked = now
    next_check = n + step
    if now - last >= INTERVAL then draw(false) end
  end
  local function finish()
    if finished or t0 == nil then return end
    finished = true
    draw(true)
  end
  local up = s
  local out = require("luasync.stream")._derive(up, function()
    if t0 == nil then t0 = hrtime(); checked = t0; draw(false) end
    local v = up._pull()
    if v == nil then
      finish()
      return nil
    end
    n = n + 1
    if n >= next_check then tick() end
    return v
  end, finish)
  return out
end

return setmetatable({ line = line }, { __call = function(_, s, opts) return progress(s, opts) end })
