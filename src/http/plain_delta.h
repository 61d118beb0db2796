// The text of an LLM stream event that is nothing but a plain text delta, found without decoding the JSON: the
// transport hands such events to the LLM layer as the text alone. The rules are those of plain_delta in
// lua/luasync/llm/openai.lua and anthropic.lua, which tests hold these to.
#pragma once

#include <string_view>

namespace luasync::http {

enum class DeltaFormat {
  kNone,
  /// {...,"choices":[{"index":0,"delta":{"content":"TEXT"},...,"finish_reason":null}]...}, no second choice
  kOpenAi,
  /// event content_block_delta: {...,"delta":{"type":"text_delta","text":"TEXT"}} (ending the data)
  kAnthropic,
};

/// True, with *text set (a view into data), when the SSE event (type, data) is a plain delta in `format` and
/// TEXT has no escapes; false for anything else (role, finish, usage, tool and error events, other field order
/// or spacing), which takes the full decode.
bool PlainDelta(DeltaFormat format, std::string_view type, std::string_view data, std::string_view* text);

}  // namespace luasync::http
