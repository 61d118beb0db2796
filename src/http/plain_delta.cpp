#include "http/plain_delta.h"

namespace luasync::http {

namespace {

constexpr auto npos = std::string_view::npos;

// TEXT of `head` + TEXT + '"' in data: [begin, end) with end the first quote after the head (inside a JSON
// string a quote is always escaped), or false when there is no head or TEXT has an escape.
bool QuotedAfter(std::string_view data, std::string_view head, size_t* begin, size_t* end) {
  size_t at = data.find(head);
  if (at == npos) return false;
  *begin = at + head.size();
  *end = data.find('"', *begin);
  return *end != npos && data.find('\\', *begin) >= *end;
}

bool OpenAi(std::string_view data, std::string_view* text) {
  size_t begin = 0, end = 0;
  if (!QuotedAfter(data, "{\"index\":0,\"delta\":{\"content\":\"", &begin, &end)) return false;
  if (end + 1 >= data.size() || data[end + 1] != '}') return false;  // content is delta's only field
  size_t finish = data.find("finish_reason\":null", end);
  if (finish == npos || data[finish - 1] != '"') return false;
  if (data.find("delta\":", end) != npos) return false;  // a second choice
  *text = data.substr(begin, end - begin);
  return true;
}

bool Anthropic(std::string_view type, std::string_view data, std::string_view* text) {
  if (type != "content_block_delta") return false;
  size_t begin = 0, end = 0;
  if (!QuotedAfter(data, "{\"type\":\"text_delta\",\"text\":\"", &begin, &end)) return false;
  if (data.size() != end + 3 || data[end + 1] != '}' || data[end + 2] != '}') return false;  // "}} ends it
  *text = data.substr(begin, end - begin);
  return true;
}

}  // namespace

bool PlainDelta(DeltaFormat format, std::string_view type, std::string_view data, std::string_view* text) {
  switch (format) {
    case DeltaFormat::kOpenAi: return OpenAi(data, text);
    case DeltaFormat::kAnthropic: return Anthropic(type, data, text);
    case DeltaFormat::kNone: break;
  }
  return false;
}

}  // namespace luasync::http
