#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "http/ndjson.h"

using luasync::http::NdjsonFramer;
using Lines = std::vector<std::string>;

namespace {

struct Framed {
  Lines lines;
  bool finished = false;
  std::string error;
  bool operator==(const Framed& o) const {
    return lines == o.lines && finished == o.finished && error == o.error;
  }
};

Framed FramePieces(const std::vector<std::string>& pieces, size_t max = NdjsonFramer::kDefaultMaxSize) {
  Framed out;
  NdjsonFramer f([&](std::string_view line) { out.lines.emplace_back(line); }, max);
  for (const auto& p : pieces) f.Feed(p);
  out.finished = f.Finish();
  out.error = f.error();
  return out;
}

Lines Frame(const std::string& s) { return FramePieces({s}).lines; }

const char* const kOllama =
    "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hel\"},\"done\":false}\n"
    "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"lo\\n\"},\"done\":false}\n"
    "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
    "\"done_reason\":\"stop\",\"prompt_eval_count\":7,\"eval_count\":2}";

}  // namespace

TEST_CASE("ndjson: lines end with LF, a CR before it is dropped", "[ndjson]") {
  CHECK(Frame("{\"a\":1}\n{\"b\":2}\n") == Lines{"{\"a\":1}", "{\"b\":2}"});
  CHECK(Frame("{\"a\":1}\r\n{\"b\":2}\r\n") == Lines{"{\"a\":1}", "{\"b\":2}"});
  // Only one CR goes; a CR inside a line is not a line end.
  CHECK(Frame("a\r\r\nb\rc\n") == Lines{"a\r", "b\rc"});
}

TEST_CASE("ndjson: empty and whitespace-only lines are skipped", "[ndjson]") {
  CHECK(Frame("\n\n1\n\r\n \t \n2\n\n") == Lines{"1", "2"});
  CHECK(Frame("\n\r\n").empty());
  // Whitespace around content is kept: the JSON parser deals with it.
  CHECK(Frame("  {} \n") == Lines{"  {} "});
}

TEST_CASE("ndjson: a final line without newline is delivered by Finish", "[ndjson]") {
  Lines got;
  NdjsonFramer f([&](std::string_view l) { got.emplace_back(l); });
  f.Feed("1\n2");
  CHECK(got == Lines{"1"});
  CHECK(f.Finish());
  CHECK(got == Lines{"1", "2"});
  // Finish with nothing pending delivers nothing.
  CHECK(f.Finish());
  CHECK(got == Lines{"1", "2"});
  CHECK(Frame("x\r") == Lines{"x"});
  CHECK(Frame("  ").empty());
}

TEST_CASE("ndjson: lines split across pieces are joined", "[ndjson]") {
  CHECK(FramePieces({"{\"a\"", ":1}\r", "\n{", "}"}).lines == Lines{"{\"a\":1}", "{}"});
  CHECK(FramePieces({"a", "", "b\n", "\n"}).lines == Lines{"ab"});
}

TEST_CASE("ndjson: splitting at every byte boundary gives the same lines", "[ndjson]") {
  std::string crlf;
  for (const char* c = kOllama; *c; ++c) {
    if (*c == '\n') crlf += '\r';
    crlf += *c;
  }
  for (const std::string& stream : {std::string(kOllama), crlf, std::string("\n\r\n") + kOllama + "\r\n\n"}) {
    Framed whole = FramePieces({stream});
    REQUIRE(whole.lines.size() == 3);
    CHECK(whole.lines[2].substr(whole.lines[2].size() - 15) == "\"eval_count\":2}");
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      Framed split = FramePieces({stream.substr(0, cut), stream.substr(cut)});
      if (!(split == whole)) {
        INFO("cut at " << cut);
        CHECK(split.lines == whole.lines);
      }
    }
    std::vector<std::string> bytes;
    for (char c : stream) bytes.emplace_back(1, c);
    CHECK(FramePieces(bytes) == whole);
  }
}

TEST_CASE("ndjson: size guard reports an error instead of growing", "[ndjson]") {
  Framed ok = FramePieces({"12345678\n"}, 8);
  CHECK(ok.lines == Lines{"12345678"});
  CHECK(ok.error.empty());

  Framed bad = FramePieces({"1\n123456789\n2\n"}, 8);
  CHECK(bad.lines == Lines{"1"});
  CHECK_FALSE(bad.finished);
  CHECK(bad.error == "ndjson: line longer than max size (8 bytes)");
  // Same outcome when the long line arrives in pieces, or never ends.
  CHECK(FramePieces({"1\n1234", "56789", "\n2\n"}, 8) == bad);
  CHECK(FramePieces({"1\n1234", "56789"}, 8) == bad);
  // The CR of a CRLF counts: the limit does not depend on where pieces are cut.
  CHECK(FramePieces({"12345678\r\n"}, 8).error == bad.error);

  NdjsonFramer f([](std::string_view) {}, 4);
  CHECK_FALSE(f.Feed("12345"));
  CHECK_FALSE(f.Feed("1\n"));
  CHECK(f.failed());
  f.Reset();
  CHECK_FALSE(f.failed());
  CHECK(f.Feed("1\n"));
  CHECK(NdjsonFramer::kDefaultMaxSize == 16u * 1024 * 1024);
}
