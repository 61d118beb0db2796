-- complete_async.lua: the design's llmBridge example (seed 002-ExampleCompleteAsync.lua),
-- runnable. llmBridge.generateAsync and llmBridge.streamGenerate are llm.generate and
-- llm.streamGenerate on the default client, configured from the environment (docs/llm.md).
-- The three parts run one after the other here, so the output has a fixed order.

-- Async chat conversation
local chat = async(function()
  local conversation = {}

  -- First message
  local response1 = await(llmBridge.generateAsync(
    "Hello, I need help with async programming in Lua",
    { temperature = 0.7 }
  ))
  table.insert(conversation, { role = "assistant", content = response1 })

  -- Follow-up
  local response2 = await(llmBridge.generateAsync(
    "Can you show me an example with coroutines?",
    { temperature = 0.7 }
  ))
  table.insert(conversation, { role = "assistant", content = response2 })

  return conversation
end)

-- Execute async chat
await(chat():andThen(function(conversation)
  print("Conversation complete:", #conversation, "messages")
end):catch(function(err)
  print("Chat error:", err)
end))

-- Streaming example
local streamChat = async(function(prompt)
  local fullResponse = ""

  await(llmBridge.streamGenerate(
    prompt,
    function(chunk, err)
      if err then
        error(err)
      end

      io.write(chunk)
      io.flush()
      fullResponse = fullResponse .. chunk

      return true -- Continue streaming
    end,
    { temperature = 0.7 }
  ))

  return fullResponse
end)

local full = await(streamChat("Explain channels in one line"))
print()
print("Streamed", #full, "bytes")

-- Parallel requests
local parallelQueries = async(function(queries)
  local promises = {}

  for i, query in ipairs(queries) do
    promises[i] = llmBridge.generateAsync(query)
  end

  return await(Promise.all(promises))
end)

parallelQueries({
  "What is async programming?",
  "Explain coroutines",
  "What are promises?"
}):andThen(function(responses)
  print("Got", #responses, "responses")
end)
