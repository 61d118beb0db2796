// Fast path for json.decode. nlohmann_json's lexer copies string literals one
// byte at a time (twice: into the token and into an error-report buffer), and
// strings are most of a typical LLM response. So the parser reads a
// "skeleton" of the text instead, in which every string literal is replaced by
// "", and each string token it reports stands for the next literal here,
// checked and unescaped by a scanner that reads 8 bytes at a time. Grammar,
// numbers and every error message stay nlohmann's: when anything fails here,
// json.decode parses the original text, which reports the error.
//
// The skeleton is produced in small windows as the parser pulls it, so memory
// stays in cache and no buffer the size of the text is allocated.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace luasync::json {

class StringSplitter {
 public:
  StringSplitter(const char* text, size_t n);
  StringSplitter(const StringSplitter&) = delete;
  StringSplitter& operator=(const StringSplitter&) = delete;

  /// Input iterator over the skeleton, for nlohmann's iterator input adapter,
  /// which only dereferences, increments and compares with end().
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = char;

    explicit Iterator(StringSplitter* s) : s_(s) {}
    char operator*() const { return *s_->cur_; }
    Iterator& operator++() {
      ++s_->cur_;
      return *this;
    }
    // Any two iterators compare unequal while skeleton text remains.
    bool operator!=(const Iterator&) const { return s_->cur_ != s_->lim_ || s_->Refill(); }
    bool operator==(const Iterator& o) const { return !(*this != o); }

   private:
    StringSplitter* s_;
  };

  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(this); }

  /// The literal behind the parser's next string token, unescaped; valid
  /// until the next call. False if there is none (cannot happen in a
  /// successful parse; the caller then falls back).
  bool Next(std::string_view* literal) {
    if (next_ == pieces_.size()) return false;
    const Piece& p = pieces_[next_++];
    const char* base = (p.off & kInArena) ? arena_.data() + (p.off & ~kInArena) : input_ + p.off;
    *literal = {base, p.len};
    return true;
  }

  /// After a successful parse: true if the whole text was split without
  /// error and every literal was taken. False means: parse the original text.
  /// The scanner rejects exactly what nlohmann's lexer rejects in strings:
  /// UTF-8 per Unicode table 3-7, no raw control characters, only the escapes
  /// \" \\ \/ \b \f \n \r \t \uXXXX with paired surrogates (\u0000 is fine).
  /// It also rejects any NUL byte, which the lexer takes for end of input.
  bool Done() const { return !failed_ && pos_ == end_ && next_ == pieces_.size(); }

 private:
  static constexpr size_t kWindow = 32 * 1024;
  static constexpr size_t kInArena = size_t{1} << (sizeof(size_t) * 8 - 1);
  struct Piece {
    size_t off;  // in input_, or in arena_ when kInArena is set
    size_t len;
  };

  bool Refill();
  bool String();
  bool Escaped(const char* start);
  bool Escape();

  const char* input_;
  const char* pos_;  // next byte of the text to split
  const char* end_;
  std::unique_ptr<char[]> window_;  // kWindow + 2 bytes of skeleton
  const char* cur_ = nullptr;       // the parser's position in window_
  const char* lim_ = nullptr;
  std::vector<Piece> pieces_;  // literals behind window_'s string tokens
  size_t next_ = 0;            // the next one to hand out
  std::string arena_;          // those that had escapes, unescaped
  bool failed_ = false;
};

}  // namespace luasync::json
