// The content of an OpenAI-compatible stream chunk that is nothing but a plain text delta of the first choice,
// found without decoding the JSON: the transport hands such events to the LLM layer as the text alone. The rules
// are those of plain_delta in lua/luasync/llm/openai.lua, which tests hold this to.
#pragma once

#include <string_view>

namespace luasync::http {

/// True, with *text set (a view into data), when data is
///   {...,"choices":[{"index":0,"delta":{"content":"TEXT"},...,"finish_reason":null}]...}
/// with TEXT free of escapes and no second choice; false for anything else (the role chunk, finish, usage, tool
/// calls, other field order or spacing), which takes the full decode.
bool OpenAiPlainDelta(std::string_view data, std::string_view* text);

}  // namespace luasync::http
