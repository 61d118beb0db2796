#include "http/openai_delta.h"

namespace luasync::http {

bool OpenAiPlainDelta(std::string_view data, std::string_view* text) {
  constexpr std::string_view kHead = "{\"index\":0,\"delta\":{\"content\":\"";
  constexpr auto npos = std::string_view::npos;
  size_t head = data.find(kHead);
  if (head == npos) return false;
  size_t begin = head + kHead.size();
  // Inside a JSON string a quote is always escaped: the first quote ends TEXT, unless TEXT has escapes.
  size_t end = data.find('"', begin);
  if (end == npos || end + 1 >= data.size() || data[end + 1] != '}') return false;  // content: delta's only field
  if (data.find('\\', begin) < end) return false;
  size_t finish = data.find("finish_reason\":null", end);
  if (finish == npos || data[finish - 1] != '"') return false;
  if (data.find("delta\":", end) != npos) return false;  // a second choice
  *text = data.substr(begin, end - begin);
  return true;
}

}  // namespace luasync::http
