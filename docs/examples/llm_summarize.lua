-- llm_summarize.lua: a one-line summary of every line of stdin, 8 requests at a time,
-- printed in input order.
--
--   luasync llm_summarize.lua < notes.txt
--
-- Uses the default client, configured from the environment (docs/llm.md):
-- LUASYNC_LLM_PROVIDER, OPENAI_API_KEY, ANTHROPIC_API_KEY, OLLAMA_HOST, ...
local n = 0
await(stdin:lines()
  :filter(function(line) return line:find("%S") ~= nil end)
  :mapAsync(function(line)
    local summary = await(llm.generate("Summarize in one short sentence:\n" .. line, { max_tokens = 60 }))
    return (summary:gsub("%s+", " "))
  end, { concurrency = 8 })   -- ordered by default: results come out in input order
  :forEach(function(summary)
    n = n + 1
    print(n .. ". " .. summary)
  end))
