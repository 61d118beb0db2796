-- luasync.llm.usage: token totals per model, for one client and for the whole process.
--
-- A tally is { [model] = {requests=, input_tokens=, output_tokens=} }, where the
-- model is the name the server reported. Only completed calls count.
local pairs, type, tonumber = pairs, type, tonumber

local M = {}

M.total = {}   -- every client's calls (llm.usage(), --llm-usage)

local function add(tally, model, usage)
  local t = tally[model]
  if not t then
    t = { requests = 0, input_tokens = 0, output_tokens = 0 }
    tally[model] = t
  end
  t.requests = t.requests + 1
  t.input_tokens = t.input_tokens + (tonumber(usage.input_tokens) or 0)
  t.output_tokens = t.output_tokens + (tonumber(usage.output_tokens) or 0)
end

--- record(tally, result): count a completed call in tally and in the process total
function M.record(tally, result)
  local model = type(result.model) == "string" and result.model or "unknown"
  add(tally, model, result.usage)
  add(M.total, model, result.usage)
end

--- copy(tally) -> a snapshot the caller may keep or change
function M.copy(tally)
  local out = {}
  for model, t in pairs(tally) do
    out[model] = { requests = t.requests, input_tokens = t.input_tokens, output_tokens = t.output_tokens }
  end
  return out
end

--- summary(tally) -> the text --llm-usage prints: one line per model, sorted, and a total
function M.summary(tally)
  local models = {}
  for model in pairs(tally) do models[#models + 1] = model end
  if #models == 0 then return "llm usage: no requests\n" end
  table.sort(models)
  local width = #"model"
  for _, m in ipairs(models) do if #m > width then width = #m end end
  local fmt = "%-" .. width .. "s  %8s  %13s  %13s\n"
  local out = { "llm usage:\n", fmt:format("model", "requests", "input_tokens", "output_tokens") }
  local r, i, o = 0, 0, 0
  for _, m in ipairs(models) do
    local t = tally[m]
    out[#out + 1] = fmt:format(m, t.requests, t.input_tokens, t.output_tokens)
    r, i, o = r + t.requests, i + t.input_tokens, o + t.output_tokens
  end
  if #models > 1 then out[#out + 1] = fmt:format("total", r, i, o) end
  return table.concat(out)
end

return M
