-- llm_stream.lua: stream an answer to stdout as the model writes it.
--
--   luasync llm_stream.lua "Why is the sky blue?"
--
-- The default client comes from the environment (docs/llm.md). Token counts go to stderr.
local question = arg[1] or "Write a haiku about event loops."
local s = llm.stream { messages = { { role = "user", content = question } }, system = "Answer briefly." }
for delta in s:iter() do
  io.write(delta)
  io.flush()
end
io.write("\n")
local r = await(s:result())
io.stderr:write(string.format("[%s: %d input + %d output tokens, %s]\n",
  r.model, r.usage.input_tokens, r.usage.output_tokens, r.finish_reason))
