// Byte-level helpers shared by the JSON encoder and string splitter.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace luasync::json {

static_assert(std::endian::native == std::endian::little, "SpecialMask reads words little-endian");

/// For 8 bytes loaded little-endian: nonzero if any needs a closer look inside
/// a JSON string (< 0x20, '"', '\\' or >= 0x80). The lowest set bit is in the
/// first such byte: the "has a zero byte" trick can flag a byte falsely only
/// above a byte that really matched (borrows run upwards).
inline uint64_t SpecialMask(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t q = x ^ (kOnes * '"'), b = x ^ (kOnes * '\\');
  const uint64_t lt20 = (x - kOnes * 0x20) & ~x;
  const uint64_t eq_q = (q - kOnes) & ~q, eq_b = (b - kOnes) & ~b;
  return (lt20 | eq_q | eq_b | x) & kHigh;
}

/// Offset of the first byte in [p, end) that SpecialMask would flag, or
/// end - p if none. 16 bytes at a time with SSE2 (every x86-64 has it), else
/// 8 at a time with SpecialMask.
inline size_t SkipPlain(const unsigned char* p, const unsigned char* end) {
  const unsigned char* s = p;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them too.
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                     _mm_cmplt_epi8(v, space));
    if (const int m = _mm_movemask_epi8(hit)) return static_cast<size_t>(p - s) + static_cast<size_t>(__builtin_ctz(m));
    p += 16;
  }
#endif
  while (end - p >= 8) {
    uint64_t x;
    __builtin_memcpy(&x, p, 8);
    if (const uint64_t m = SpecialMask(x)) return static_cast<size_t>(p - s) + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
  while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
  return static_cast<size_t>(p - s);
}

/// Length of the well-formed UTF-8 sequence starting at p (Unicode table 3-7:
/// no overlong forms, no surrogates, nothing above U+10FFFF), 0 if ill-formed.
/// nlohmann_json's lexer applies exactly these rules.
inline size_t Utf8Length(const unsigned char* p, size_t avail) {
  const unsigned c = p[0];
  auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c < 0xF5) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

}  // namespace luasync::json
