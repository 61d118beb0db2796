-- guide_summarize.lua: cat prompts.txt | luasync guide_summarize.lua
-- One summary per input line, 8 requests in flight, printed in input order.
await(stdin:lines()
  :filter(function(line) return line ~= "" end)
  :mapAsync(function(line)
    local summary = await(llm.generate("Summarize in one sentence: " .. line))
    return summary:gsub("\n", " ") .. "\n"
  end, { concurrency = 8 })
  :pipeTo(stdout))
