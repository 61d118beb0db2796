-- llm_race.lua: ask two providers the same question, print the first answer and cancel
-- the slower request (its transfer is aborted).
--
--   luasync llm_race.lua "Name a prime number."
--
-- Needs both providers configured (docs/llm.md): OPENAI_API_KEY (or OPENAI_BASE_URL) and
-- ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL).
local prompt = arg[1] or "Name a prime number."
local contenders = {
  openai = llm.client { provider = "openai" },
  anthropic = llm.client { provider = "anthropic" },
}

local requests, tagged = {}, {}
for name, client in pairs(contenders) do
  local p = client.generate(prompt, { max_tokens = 100 })
  requests[#requests + 1] = p
  tagged[#tagged + 1] = p:andThen(function(text) return { who = name, text = text } end)
end

local ok, first = pcall(await, Promise.race(tagged))
for _, p in ipairs(requests) do p:cancel("lost the race") end   -- no-op for the winner
if not ok then error(first, 0) end
print(first.who .. " answered first: " .. first.text)
