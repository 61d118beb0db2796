// The part the parser fuzz targets share: feed a stream in pieces, and check
// that any way of cutting it gives the result of feeding it whole.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace luasync::fuzz {

inline void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
  }
}

/// Feeds s to parser.Feed(ptr, len), cut at the given ascending offsets.
template <class Parser>
void FeedInPieces(Parser& parser, std::string_view s, const std::vector<size_t>& cuts) {
  size_t pos = 0;
  for (size_t cut : cuts) {
    parser.Feed(s.data() + pos, cut - pos);
    pos = cut;
  }
  parser.Feed(s.data() + pos, s.size() - pos);
}

/// run(cuts) parses s cut at cuts; whole is run({}). Checks that two pieces
/// (cut where seed says), pieces of 0..6 bytes and (for inputs up to 4 KiB) one
/// byte at a time all give whole.
template <class Result, class Run>
void CheckSplits(std::string_view s, uint32_t seed, const Result& whole, Run run) {
  Check(run(std::vector<size_t>{seed * s.size() / 255}) == whole, "two pieces equal one");

  std::vector<size_t> cuts;
  for (size_t pos = 0;;) {
    seed = seed * 1103515245u + 12345u;
    pos += (seed >> 16) % 7;
    if (pos >= s.size()) break;
    cuts.push_back(pos);
  }
  Check(run(cuts) == whole, "many pieces equal one");

  if (s.size() <= 4096) {
    cuts.clear();
    for (size_t i = 1; i < s.size(); ++i) cuts.push_back(i);
    Check(run(cuts) == whole, "byte at a time equals one piece");
  }
}

}  // namespace luasync::fuzz
