// Fast path for json.decode. nlohmann_json's lexer copies every byte of a
// token twice (into the token and into an error-report buffer) and converts
// numbers with strtod/strtoull; string and number literals are most of a
// typical LLM response. So the parser reads a "skeleton" of the text instead,
// in which every string literal is replaced by "" and every number by null,
// and each string or null token it reports stands for the next literal here
// (real nulls are queued as such). A null costs the lexer far less than a
// number, which it would convert with strtoull. Literals are checked and
// converted by a scanner that reads strings 8 bytes at a time and numbers
// with std::from_chars.
//
// Grammar, nesting and every error message stay nlohmann's: the scanner
// accepts only what nlohmann accepts, and when it meets anything else,
// json.decode parses the original text with nlohmann alone, which reports the
// error (or, if the scanner was merely cautious, gives the result).
//
// The skeleton is produced in small windows as the parser pulls it, so memory
// stays in cache and no buffer the size of the text is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace luasync::json {

class LiteralSplitter {
 public:
  /// A null or a number literal, numbers typed as nlohmann's lexer types them.
  struct Scalar {
    enum Kind : uint8_t { kNull, kUnsigned, kInteger, kFloat } kind;
    union {
      uint64_t u;  // non-negative integers that fit
      int64_t i;   // negative integers that fit
      double d;    // everything else
    };
  };

  LiteralSplitter(const char* text, size_t n);
  LiteralSplitter(const LiteralSplitter&) = delete;
  LiteralSplitter& operator=(const LiteralSplitter&) = delete;

  /// Input iterator over the skeleton, for nlohmann's iterator input adapter,
  /// which only dereferences, increments and compares with end().
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = char;

    explicit Iterator(LiteralSplitter* s) : s_(s) {}
    char operator*() const { return *s_->cur_; }
    Iterator& operator++() {
      ++s_->cur_;
      return *this;
    }
    // Any two iterators compare unequal while skeleton text remains.
    bool operator!=(const Iterator&) const { return s_->cur_ != s_->lim_ || s_->Refill(); }
    bool operator==(const Iterator& o) const { return !(*this != o); }

   private:
    LiteralSplitter* s_;
  };

  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(this); }

  /// The string behind the parser's next string token, unescaped; valid until
  /// the next refill. False if there is none (which cannot happen in a
  /// successful parse; the caller then falls back).
  bool NextString(std::string_view* s) {
    if (next_string_ == strings_.size()) return false;
    const Piece& p = strings_[next_string_++];
    const char* base = (p.off & kInArena) ? arena_.data() + (p.off & ~kInArena) : input_ + p.off;
    *s = {base, p.len};
    return true;
  }
  /// What the parser's next null token stands for; false if there is none.
  bool NextScalar(Scalar* v) {
    if (next_scalar_ == scalars_.size()) return false;
    *v = scalars_[next_scalar_++];
    return true;
  }

  /// After a successful parse: true if the whole text was split and every
  /// literal was taken. False means: parse the original text instead.
  /// Strings follow nlohmann's rules: UTF-8 per Unicode table 3-7, no raw
  /// control characters, only the escapes \" \\ \/ \b \f \n \r \t \uXXXX with
  /// paired surrogates (\u0000 is fine). Numbers follow RFC 8259 and must be
  /// followed by whitespace, ',', ']', '}' or the end; integers that do not
  /// fit 64 bits become doubles; a double that overflows or underflows is
  /// left to nlohmann. Any NUL byte (the lexer's end of input) fails.
  bool Done() const {
    return !failed_ && pos_ == end_ && next_string_ == strings_.size() && next_scalar_ == scalars_.size();
  }

 private:
  static constexpr size_t kWindow = 32 * 1024;
  static constexpr size_t kSlack = 4;  // a token may end this far past kWindow
  static constexpr size_t kInArena = size_t{1} << (sizeof(size_t) * 8 - 1);
  struct Piece {
    size_t off;  // in input_, or in arena_ when kInArena is set
    size_t len;
  };

  bool Refill();
  bool String();
  bool Escaped(const char* start);
  bool Escape();
  bool NumberLiteral();

  const char* input_;
  const char* pos_;  // next byte of the text to split
  const char* end_;
  std::unique_ptr<char[]> window_;  // kWindow + kSlack bytes of skeleton
  const char* cur_ = nullptr;       // the parser's position in window_
  const char* lim_ = nullptr;
  // The literals behind window_'s tokens, and the next ones to hand out.
  std::vector<Piece> strings_;
  size_t next_string_ = 0;
  std::vector<Scalar> scalars_;
  size_t next_scalar_ = 0;
  std::string arena_;  // strings that had escapes, unescaped
  bool failed_ = false;
};

}  // namespace luasync::json
