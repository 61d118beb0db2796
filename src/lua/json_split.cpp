#include "lua/json_split.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lua/json_text.h"

namespace luasync::json {
namespace {

int Hex4(const char* p) {
  int v = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = p[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

void AppendUtf8(std::string& out, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    b[0] = static_cast<char>(0xC0 | (cp >> 6));
    b[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = static_cast<char>(0xE0 | (cp >> 12));
    b[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = static_cast<char>(0xF0 | (cp >> 18));
    b[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    b[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.append(b, n);
}

inline size_t Plain(const char* p, const char* end) {
  return SkipPlain(reinterpret_cast<const unsigned char*>(p), reinterpret_cast<const unsigned char*>(end));
}

inline size_t Utf8At(const char* p, const char* end) {
  return Utf8Length(reinterpret_cast<const unsigned char*>(p), static_cast<size_t>(end - p));
}

}  // namespace

StringSplitter::StringSplitter(const char* text, size_t n)
    : input_(text), pos_(text), end_(text + n), window_(new char[kWindow + 2]) {}

// Fills the window with the next stretch of skeleton: plain text is copied,
// each literal (always whole, however long) becomes "". Called only when the
// parser has consumed the window, and so has taken all its literals.
bool StringSplitter::Refill() {
  if (failed_ || pos_ == end_) return false;
  if (next_ != pieces_.size()) {  // the parser skipped a literal: cannot happen
    failed_ = true;
    return false;
  }
  pieces_.clear();
  next_ = 0;
  arena_.clear();
  char* w = window_.get();
  char* const full = w + kWindow;
  while (pos_ < end_ && w < full) {
    const size_t avail = std::min(static_cast<size_t>(end_ - pos_), static_cast<size_t>(full - w));
    const char* quote = static_cast<const char*>(std::memchr(pos_, '"', avail));
    const size_t run = quote ? static_cast<size_t>(quote - pos_) : avail;
    std::memcpy(w, pos_, run);
    w += run;
    pos_ += run;
    if (!quote) continue;
    w[0] = w[1] = '"';  // run < avail, so the two bytes fit in the slack
    w += 2;
    ++pos_;
    if (!String()) {
      failed_ = true;
      return false;
    }
  }
  cur_ = window_.get();
  lim_ = w;
  if (std::memchr(cur_, 0, static_cast<size_t>(lim_ - cur_))) {
    failed_ = true;
    return false;
  }
  return cur_ != lim_;
}

// pos_ is just past an opening quote; on success it is left just past the
// closing one. Literals without escapes are recorded in place.
bool StringSplitter::String() {
  const char* start = pos_;
  for (;;) {
    pos_ += Plain(pos_, end_);
    if (pos_ >= end_) return false;  // no closing quote
    const auto c = static_cast<unsigned char>(*pos_);
    if (c == '"') {
      pieces_.push_back({static_cast<size_t>(start - input_), static_cast<size_t>(pos_ - start)});
      ++pos_;
      return true;
    }
    if (c == '\\') return Escaped(start);
    if (c < 0x20) return false;
    const size_t len = Utf8At(pos_, end_);
    if (len == 0) return false;
    pos_ += len;
  }
}

// The rest of a literal that has escapes, unescaped into the arena. Bytes
// are appended in spans between escapes; UTF-8 sequences are only validated.
bool StringSplitter::Escaped(const char* start) {
  const size_t off = arena_.size();
  const char* span = start;  // [span, pos_) is checked but not yet appended
  for (;;) {
    pos_ += Plain(pos_, end_);
    if (pos_ >= end_) return false;
    const auto c = static_cast<unsigned char>(*pos_);
    if (c >= 0x80) {
      const size_t len = Utf8At(pos_, end_);
      if (len == 0) return false;
      pos_ += len;
      continue;
    }
    if (c < 0x20) return false;
    arena_.append(span, static_cast<size_t>(pos_ - span));
    if (c == '"') {
      pieces_.push_back({off | kInArena, arena_.size() - off});
      ++pos_;
      return true;
    }
    if (!Escape()) return false;  // c is a backslash
    span = pos_;
  }
}

// pos_ is at a backslash; appends what the escape stands for and moves past it.
bool StringSplitter::Escape() {
  const char* p = pos_;
  if (end_ - p < 2) return false;
  char c;
  switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
      if (end_ - p < 6) return false;
      int cp = Hex4(p + 2);
      if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return false;
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {  // must be followed by a low surrogate
        if (end_ - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
        const int lo = Hex4(p + 2);
        if (lo < 0xDC00 || lo > 0xDFFF) return false;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      AppendUtf8(arena_, static_cast<unsigned>(cp));
      pos_ = p;
      return true;
    }
    default:
      return false;
  }
  arena_.push_back(c);
  pos_ = p + 2;
  return true;
}

}  // namespace luasync::json
