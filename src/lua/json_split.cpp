#include "lua/json_split.h"

#include <algorithm>
#include <charconv>
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

// What a byte outside string literals starts: copied as is, a string, a
// number, maybe a null.
enum Outside : uint8_t { kCopy, kQuote, kDigits, kN };
struct OutsideTable {
  Outside cls[256];
  bool ends_number[256];  // may follow a number: the lexer then ends it there
  constexpr OutsideTable() : cls(), ends_number() {
    cls['"'] = kQuote;
    cls['n'] = kN;
    cls['-'] = kDigits;
    for (int c = '0'; c <= '9'; ++c) cls[c] = kDigits;
    for (unsigned char c : {' ', '\t', '\n', '\r', ',', ']', '}'}) ends_number[c] = true;
  }
};
constexpr OutsideTable kOutside;

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

LiteralSplitter::LiteralSplitter(const char* text, size_t n)
    : input_(text), pos_(text), end_(text + n), window_(new char[kWindow + kSlack]) {}

// Fills the window with the next stretch of skeleton: other text is copied,
// each string literal (always whole, however long) becomes "" and each number
// null. Called when the parser has consumed the window, and so has taken all
// its literals: it never reads past a string or a null.
bool LiteralSplitter::Refill() {
  if (failed_ || pos_ == end_) return false;
  if (next_string_ != strings_.size() || next_scalar_ != scalars_.size()) {
    failed_ = true;  // the parser skipped a literal: cannot happen
    return false;
  }
  strings_.clear();
  next_string_ = 0;
  scalars_.clear();
  next_scalar_ = 0;
  arena_.clear();
  char* w = window_.get();
  char* const full = w + kWindow;
  while (pos_ < end_ && w < full) {
    switch (kOutside.cls[static_cast<unsigned char>(*pos_)]) {
      case kCopy: {  // short runs (punctuation, literals): no memcpy call
        const char* lim = pos_ + std::min(end_ - pos_, full - w);
        do {
          *w++ = *pos_++;
        } while (pos_ < lim && kOutside.cls[static_cast<unsigned char>(*pos_)] == kCopy);
        break;
      }
      case kQuote:  // the window has slack for the tokens written here
        *w++ = '"';
        *w++ = '"';
        ++pos_;
        if (!String()) failed_ = true;
        break;
      case kDigits:
        std::memcpy(w, "null", 4);
        w += 4;
        if (!NumberLiteral()) failed_ = true;
        break;
      case kN:
        if (end_ - pos_ >= 4 && std::memcmp(pos_, "null", 4) == 0) {
          std::memcpy(w, "null", 4);
          w += 4;
          pos_ += 4;
          scalars_.push_back(Scalar{Scalar::kNull, {}});
        } else {
          *w++ = *pos_++;  // not a null: the lexer will fail on it
        }
        break;
    }
    if (failed_) return false;
  }
  cur_ = window_.get();
  lim_ = w;
  if (std::memchr(cur_, 0, static_cast<size_t>(lim_ - cur_))) {
    failed_ = true;
    return false;
  }
  return cur_ != lim_;
}

// pos_ is at '-' or a digit. Reads the number as nlohmann would, or fails.
bool LiteralSplitter::NumberLiteral() {
  const char* const start = pos_;
  const char* p = pos_;
  const bool negative = *p == '-';
  if (negative) ++p;
  if (p == end_ || !IsDigit(*p)) return false;
  // Integer part, converted on the way while it fits 64 bits (19 digits do).
  const char* const digits = p;
  uint64_t v = 0;
  if (*p == '0') {
    ++p;
  } else {
    while (p < end_ && IsDigit(*p)) v = v * 10 + static_cast<unsigned>(*p++ - '0');
  }
  const char* const int_end = p;
  if (p < end_ && *p == '.') {
    const char* frac = ++p;
    while (p < end_ && IsDigit(*p)) ++p;
    if (p == frac) return false;
  }
  if (p < end_ && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < end_ && (*p == '+' || *p == '-')) ++p;
    const char* exp = p;
    while (p < end_ && IsDigit(*p)) ++p;
    if (p == exp) return false;
  }
  if (p < end_ && !kOutside.ends_number[static_cast<unsigned char>(*p)]) return false;
  pos_ = p;

  Scalar n;
  constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;  // of INT64_MIN
  const size_t ndigits = static_cast<size_t>(int_end - digits);
  if (p == int_end && ndigits <= 19) {  // an integer that fits, as strtoull/strtoll give it
    if (!negative) {
      n.kind = Scalar::kUnsigned;
      n.u = v;
      scalars_.push_back(n);
      return true;
    }
    if (v <= kMinMagnitude) {
      n.kind = Scalar::kInteger;
      n.i = v == kMinMagnitude ? INT64_MIN : -static_cast<int64_t>(v);
      scalars_.push_back(n);
      return true;
    }
  } else if (p == int_end && ndigits == 20 && !negative) {  // up to 18446744073709551615
    uint64_t u = 0;
    bool fits = true;
    for (const char* q = digits; q < int_end && fits; ++q) {
      fits = !__builtin_mul_overflow(u, 10u, &u) && !__builtin_add_overflow(u, static_cast<unsigned>(*q - '0'), &u);
    }
    if (fits) {
      n.kind = Scalar::kUnsigned;
      n.u = u;
      scalars_.push_back(n);
      return true;
    }
  }
  // Correctly rounded, as glibc's strtod is. Out of range either way is left
  // to nlohmann: overflow is an error there, underflow gives 0 or a denormal.
  const auto r = std::from_chars(start, p, n.d);
  if (r.ec != std::errc() || r.ptr != p) return false;
  n.kind = Scalar::kFloat;
  scalars_.push_back(n);
  return true;
}

// pos_ is just past an opening quote; on success it is left just past the
// closing one. Literals without escapes are recorded in place.
bool LiteralSplitter::String() {
  const char* start = pos_;
  for (;;) {
    pos_ += Plain(pos_, end_);
    if (pos_ >= end_) return false;  // no closing quote
    const auto c = static_cast<unsigned char>(*pos_);
    if (c == '"') {
      strings_.push_back({static_cast<size_t>(start - input_), static_cast<size_t>(pos_ - start)});
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
bool LiteralSplitter::Escaped(const char* start) {
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
      strings_.push_back({off | kInArena, arena_.size() - off});
      ++pos_;
      return true;
    }
    if (!Escape()) return false;  // c is a backslash
    span = pos_;
  }
}

// pos_ is at a backslash; appends what the escape stands for and moves past it.
bool LiteralSplitter::Escape() {
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
