#include <catch2/catch.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "http/sse.h"

using luasync::http::SseEvent;
using luasync::http::SseParser;
using namespace std::string_literals;

namespace {

struct Ev {
  std::string type, data, id;
  int64_t retry;
  bool operator==(const Ev& o) const {
    return type == o.type && data == o.data && id == o.id && retry == o.retry;
  }
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << "{" << e.type << "|" << e.data << "|" << e.id << "|" << e.retry << "}";
}

// Result of parsing a whole stream: the events, whether Finish() was clean, the error.
struct Parsed {
  std::vector<Ev> events;
  bool clean = false;
  std::string error;
  bool operator==(const Parsed& o) const {
    return events == o.events && clean == o.clean && error == o.error;
  }
};

std::ostream& operator<<(std::ostream& os, const Parsed& p) {
  os << "clean=" << p.clean << " error='" << p.error << "' events=";
  for (const auto& e : p.events) os << e;
  return os;
}

// Parses `pieces` in order, each with its own Feed() call.
Parsed ParsePieces(const std::vector<std::string>& pieces, size_t max = SseParser::kDefaultMaxSize) {
  Parsed out;
  SseParser parser(
      [&](const SseEvent& e) {
        out.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id), e.retry_ms});
      },
      max);
  for (const auto& p : pieces) parser.Feed(p);
  out.clean = parser.Finish();
  out.error = parser.error();
  return out;
}

Parsed Parse(const std::string& s, size_t max = SseParser::kDefaultMaxSize) {
  return ParsePieces({s}, max);
}

std::vector<Ev> Events(const std::string& s) { return Parse(s).events; }

Ev Msg(std::string data, std::string type = "message", std::string id = "", int64_t retry = -1) {
  return {std::move(type), std::move(data), std::move(id), retry};
}

const std::string kBom = "\xEF\xBB\xBF";

}  // namespace

TEST_CASE("sse: LF, CR and CRLF line ends give the same events", "[sse]") {
  std::vector<Ev> want = {Msg("a\nb", "x"), Msg("c")};
  CHECK(Events("event: x\ndata: a\ndata: b\n\ndata: c\n\n") == want);
  CHECK(Events("event: x\rdata: a\rdata: b\r\rdata: c\r\r") == want);
  CHECK(Events("event: x\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n") == want);
  CHECK(Events("event: x\r\ndata: a\rdata: b\n\r\ndata: c\r\r\n") == want);
}

TEST_CASE("sse: CR at the end of one piece and LF at the start of the next are one line end", "[sse]") {
  CHECK(ParsePieces({"data: a\r", "\ndata: b\r", "\n\r", "\n"}).events == std::vector<Ev>{Msg("a\nb")});
  // CR then a piece not starting with LF: the CR alone ended the line.
  CHECK(ParsePieces({"data: a\r", "\r"}).events == std::vector<Ev>{Msg("a")});
  // An empty piece in between does not forget the pending CR.
  CHECK(ParsePieces({"data: a\r", "", "\n", "\n"}).events == std::vector<Ev>{Msg("a")});
  // LF LF after CR: the first LF completes CRLF, the second is the blank line.
  CHECK(ParsePieces({"data: a\r", "\n\n"}).events == std::vector<Ev>{Msg("a")});
}

TEST_CASE("sse: multi-line data is joined with LF, empty data lines kept", "[sse]") {
  CHECK(Events("data: one\ndata: two\ndata: three\n\n") == std::vector<Ev>{Msg("one\ntwo\nthree")});
  CHECK(Events("data:\ndata\ndata: x\n\n") == std::vector<Ev>{Msg("\n\nx")});
  // A lone `data` line gives an event whose data is empty (the buffer held "\n").
  CHECK(Events("data\n\n") == std::vector<Ev>{Msg("")});
  CHECK(Events("data:\n\n") == std::vector<Ev>{Msg("")});
}

TEST_CASE("sse: comments are ignored", "[sse]") {
  CHECK(Events(": hello\ndata: a\n:\n: ping\ndata: b\n\n") == std::vector<Ev>{Msg("a\nb")});
  CHECK(Events(":only a comment\n\n").empty());
}

TEST_CASE("sse: one space after the colon is removed, only once", "[sse]") {
  CHECK(Events("data:x\n\n") == std::vector<Ev>{Msg("x")});
  CHECK(Events("data: x\n\n") == std::vector<Ev>{Msg("x")});
  CHECK(Events("data:  x \n\n") == std::vector<Ev>{Msg(" x ")});
  CHECK(Events("data:\tx\n\n") == std::vector<Ev>{Msg("\tx")});
  CHECK(Events("data: a: b\n\n") == std::vector<Ev>{Msg("a: b")});
  CHECK(Events("event:  t\ndata: x\n\n") == std::vector<Ev>{Msg("x", " t")});
}

TEST_CASE("sse: event field names the event and is reset after dispatch", "[sse]") {
  CHECK(Events("event: delta\ndata: 1\n\ndata: 2\n\n") == std::vector<Ev>{Msg("1", "delta"), Msg("2")});
  CHECK(Events("event: a\nevent: b\ndata: 1\n\n") == std::vector<Ev>{Msg("1", "b")});
  CHECK(Events("event:\ndata: 1\n\n") == std::vector<Ev>{Msg("1")});
  // An event name without data does not leak into the next event.
  CHECK(Events("event: lost\n\ndata: 1\n\n") == std::vector<Ev>{Msg("1")});
}

TEST_CASE("sse: no dispatch without data", "[sse]") {
  CHECK(Events("\n\n\n").empty());
  CHECK(Events("event: ping\n\n").empty());
  CHECK(Events("id: 7\n\n").empty());
  CHECK(Events("retry: 100\n\n").empty());
}

TEST_CASE("sse: id persists across events, NUL ids are ignored, empty id clears", "[sse]") {
  CHECK(Events("id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n") ==
        std::vector<Ev>{Msg("a", "message", "1"), Msg("b", "message", "1"), Msg("c")});
  CHECK(Events("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s) ==
        std::vector<Ev>{Msg("a", "message", "1"), Msg("b", "message", "1")});
  // The id set in an event without data still applies to later events.
  CHECK(Events("id: 9\n\ndata: a\n\n") == std::vector<Ev>{Msg("a", "message", "9")});
}

TEST_CASE("sse: retry takes only ASCII digits", "[sse]") {
  SseParser p([](const SseEvent&) {});
  CHECK(p.retry_ms() == -1);
  p.Feed("retry: 1500\n\n");
  CHECK(p.retry_ms() == 1500);
  p.Feed("retry: 12x\nretry: -5\nretry: 1.5\nretry:  7\nretry:\n\n");
  CHECK(p.retry_ms() == 1500);
  p.Feed("retry:0\n");
  CHECK(p.retry_ms() == 0);
  p.Feed("retry: 99999999999999999999999\n");
  CHECK(p.retry_ms() == INT64_MAX);
  p.Feed("retry: 9223372036854775807\n");
  CHECK(p.retry_ms() == INT64_MAX);
  p.Feed("retry: 009223372036854775806\n");
  CHECK(p.retry_ms() == INT64_MAX - 1);
  CHECK(Events("retry: 250\ndata: a\n\ndata: b\n\n") ==
        std::vector<Ev>{Msg("a", "message", "", 250), Msg("b", "message", "", 250)});
}

TEST_CASE("sse: unknown fields and field names with spaces are ignored", "[sse]") {
  CHECK(Events("foo: bar\ndata : x\n data: y\nDATA: z\ndata: ok\n\n") == std::vector<Ev>{Msg("ok")});
}

TEST_CASE("sse: one leading BOM is stripped, even split across pieces", "[sse]") {
  CHECK(Events(kBom + "data: a\n\n") == std::vector<Ev>{Msg("a")});
  CHECK(ParsePieces({"\xEF", "\xBB", "\xBF" "data: a\n\n"}).events == std::vector<Ev>{Msg("a")});
  CHECK(ParsePieces({"\xEF\xBB", "\xBF", "data: a\n\n"}).events == std::vector<Ev>{Msg("a")});
  // A second BOM is part of the line: "\xEF\xBB\xBF" "data" is an unknown field.
  CHECK(Events(kBom + kBom + "data: a\n\ndata: b\n\n") == std::vector<Ev>{Msg("b")});
  // A BOM later in the stream is not stripped.
  CHECK(Events("data: a\n\n" + kBom + "data: b\n\n") == std::vector<Ev>{Msg("a")});
  // A BOM prefix that turns out not to be a BOM is kept as data.
  CHECK(ParsePieces({"data: \xEF", "x\n\n"}).events == std::vector<Ev>{Msg("\xEFx")});
  CHECK(ParsePieces({"\xEF\xBB", "data: a\n\ndata: b\n\n"}).events == std::vector<Ev>{Msg("b")});
  CHECK(ParsePieces({"\xEF", "\n", "data: b\n\n"}).events == std::vector<Ev>{Msg("b")});
}

TEST_CASE("sse: an incomplete event at the end is discarded and Finish reports it", "[sse]") {
  Parsed p = Parse("data: a\n\ndata: b\n");
  CHECK(p.events == std::vector<Ev>{Msg("a")});
  CHECK_FALSE(p.clean);
  p = Parse("data: a\n\ndata: b");
  CHECK(p.events == std::vector<Ev>{Msg("a")});
  CHECK_FALSE(p.clean);
  p = Parse("data: a\n\nevent: x\n");
  CHECK_FALSE(p.clean);
  p = Parse("data: a\n\n: trailing comment\n");
  CHECK(p.events == std::vector<Ev>{Msg("a")});
  CHECK(p.clean);
  CHECK(Parse("\xEF\xBB").clean == false);
  CHECK(Parse("").clean);
}

TEST_CASE("sse: Reset starts a new stream", "[sse]") {
  std::vector<std::string> got;
  SseParser p([&](const SseEvent& e) { got.push_back(std::string(e.id) + "=" + std::string(e.data)); }, 16);
  p.Feed("id: 1\ndata: partial");
  p.Reset();
  p.Feed(kBom + "data: a\n\n");
  CHECK(got == std::vector<std::string>{"=a"});
  p.Feed("data: 0123456789abcdef\n");
  CHECK(p.failed());
  p.Reset();
  CHECK_FALSE(p.failed());
  CHECK(p.Feed("data: b\n\n"));
  CHECK(got == std::vector<std::string>{"=a", "=b"});
}

TEST_CASE("sse: size guard reports an error instead of growing", "[sse]") {
  // Lines: at most 12 bytes before the terminator.
  Parsed ok = Parse("data: 123456\n\n", 12);
  CHECK(ok.events == std::vector<Ev>{Msg("123456")});
  CHECK(ok.error.empty());

  Parsed p = Parse("data: a\n\ndata: 1234567\n\ndata: c\n\n", 12);
  CHECK(p.events == std::vector<Ev>{Msg("a")});
  CHECK(p.error == "sse: line longer than max size (12 bytes)");
  CHECK_FALSE(p.clean);

  // A line that never ends trips the guard too, whatever the piece sizes.
  CHECK(ParsePieces({"data: 12", "3456", "789"}, 12).error == "sse: line longer than max size (12 bytes)");
  CHECK(ParsePieces({"data: 12", "3456"}, 12).error.empty());

  // Data: the joined data (with its LF separators) is bounded too.
  p = Parse("data: 1234\ndata: 1234\ndata: 12\n\n", 12);
  CHECK(p.events.empty());
  CHECK(p.error == "sse: event data larger than max size (12 bytes)");
  CHECK(Parse("data: 12345\ndata: 1234\n\n", 12).events == std::vector<Ev>{Msg("12345\n1234")});

  // A held BOM prefix counts as a partial line, however the BOM was split.
  CHECK(Parse("\xEF\xBB", 1).error == "sse: line longer than max size (1 bytes)");
  CHECK(ParsePieces({"\xEF", "\xBB"}, 1).error == "sse: line longer than max size (1 bytes)");
  CHECK(ParsePieces({"\xEF", "\xBB", "\xBF"}, 0).error.empty());

  // Once failed, Feed keeps returning false and delivers nothing more.
  int n = 0;
  SseParser parser([&](const SseEvent&) { ++n; }, 8);
  CHECK_FALSE(parser.Feed("data: too long\n\n"));
  CHECK_FALSE(parser.Feed("data: a\n\n"));
  CHECK(n == 0);
  CHECK_FALSE(parser.Finish());
}

TEST_CASE("sse: the default size guard is 16 MiB", "[sse]") {
  CHECK(SseParser::kDefaultMaxSize == 16u * 1024 * 1024);
  std::string big(SseParser::kDefaultMaxSize, 'x');
  Parsed p = Parse("data:" + big + "\n\n");
  CHECK(p.events.empty());
  CHECK(p.error == "sse: line longer than max size (16777216 bytes)");
  std::string fits(SseParser::kDefaultMaxSize - 6, 'y');
  p = Parse("data: " + fits + "\n\n");
  REQUIRE(p.events.size() == 1);
  CHECK(p.events[0].data.size() == fits.size());
}

namespace {

const char* const kOpenAi =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w\\u00f6rld \\n\"}}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

const char* const kAnthropic =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[],"
    "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\n"
    "data:  \"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    ": keep-alive\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

std::string Crlf(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\r\n";
    else out += c;
  }
  return out;
}

std::string Cr(std::string s) {
  for (char& c : s)
    if (c == '\n') c = '\r';
  return s;
}

std::vector<std::pair<std::string, std::string>> RealisticStreams() {
  return {
      {"openai", kOpenAi},
      {"anthropic", kAnthropic},
      {"openai-crlf", Crlf(kOpenAi)},
      {"anthropic-crlf", Crlf(kAnthropic)},
      {"anthropic-cr", Cr(kAnthropic)},
      {"bom-id-retry", kBom + "retry: 3000\nid: 41\n: c\r\nevent: a\rdata: x\r\ndata:y\n\nid: 42\ndata: z\r\r"},
      {"partial-tail", std::string(kOpenAi) + "data: {\"never\":\"finished\"}"},
  };
}

}  // namespace

TEST_CASE("sse: realistic streams have the expected events", "[sse]") {
  Parsed openai = Parse(kOpenAi);
  REQUIRE(openai.events.size() == 6);
  CHECK(openai.clean);
  CHECK(openai.events[2].data ==
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w\\u00f6rld \\n\"}}]}");
  CHECK(openai.events[5] == Msg("[DONE]"));

  Parsed anthropic = Parse(kAnthropic);
  std::vector<std::string> types;
  for (const auto& e : anthropic.events) types.push_back(e.type);
  CHECK(types == std::vector<std::string>{"message_start", "content_block_start", "ping", "content_block_delta",
                                          "content_block_delta", "content_block_stop", "message_delta", "error",
                                          "message_stop"});
  CHECK(anthropic.events[3].data ==
        "{\"type\":\"content_block_delta\",\"index\":0,\n \"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}");
  CHECK(Parse(Crlf(kAnthropic)) == anthropic);
  CHECK(Parse(Cr(kAnthropic)) == anthropic);
  CHECK(Parse(kBom + kAnthropic) == anthropic);

  Parsed misc = Parse(RealisticStreams()[5].second);
  CHECK(misc.events == std::vector<Ev>{Msg("x\ny", "a", "41", 3000), Msg("z", "message", "42", 3000)});
}

TEST_CASE("sse: splitting at every byte boundary gives the same events", "[sse]") {
  for (const auto& [name, stream] : RealisticStreams()) {
    INFO(name);
    Parsed whole = Parse(stream);
    REQUIRE_FALSE(whole.events.empty());
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      Parsed split = ParsePieces({stream.substr(0, cut), stream.substr(cut)});
      if (!(split == whole)) {
        INFO("cut at " << cut);
        CHECK(split == whole);
      }
    }
    // Three pieces, cutting around every CR/LF (the interesting places).
    for (size_t a = 0; a < stream.size(); ++a) {
      if (stream[a] != '\r' && stream[a] != '\n') continue;
      for (size_t b = a; b <= a + 2 && b <= stream.size(); ++b) {
        Parsed split = ParsePieces({stream.substr(0, a), stream.substr(a, b - a), stream.substr(b)});
        if (!(split == whole)) {
          INFO("cuts at " << a << "," << b);
          CHECK(split == whole);
        }
      }
    }
    std::vector<std::string> bytes;
    for (char c : stream) bytes.emplace_back(1, c);
    CHECK(ParsePieces(bytes) == whole);
  }
}
