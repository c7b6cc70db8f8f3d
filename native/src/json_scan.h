// Building blocks of the parser's fast path for numeric lists (json_parse.cc): bit masks that
// classify a 64-byte window of the body, and the value of up to eight ASCII digits without a
// loop. Pure C++ (no Node-API); SSE2 where the compiler targets it (every x86-64), portable
// code elsewhere or when ACTORSERVE_NATIVE_NO_SIMD=1 (tests compare both).
#pragma once

#include <cstdint>
#include <cstring>

#include "simd.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace actorserve {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Load8 puts the first byte in the low bits");

constexpr size_t kScanWindow = 64;

// Bit k of each mask describes byte k of the window.
struct ByteClasses {
  uint64_t digits = 0;  // '0'..'9'
  uint64_t minus = 0;   // '-'
  uint64_t comma = 0;   // ','
  uint64_t close = 0;   // ']'
  uint64_t space = 0;   // ' '
};

inline ByteClasses ClassifyWindowPortable(const uint8_t* p) {
  ByteClasses c;
  for (size_t k = 0; k < kScanWindow; ++k) {
    const uint64_t bit = uint64_t{1} << k;
    if (p[k] >= '0' && p[k] <= '9') c.digits |= bit;
    if (p[k] == '-') c.minus |= bit;
    if (p[k] == ',') c.comma |= bit;
    if (p[k] == ']') c.close |= bit;
    if (p[k] == ' ') c.space |= bit;
  }
  return c;
}

#ifdef __SSE2__
inline ByteClasses ClassifyWindowSse2(const uint8_t* p) {
  // One 16-bit mask per 16 bytes and class; shifted into place.
  auto mask16 = [](__m128i eq, int part) {
    return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(eq))) << (16 * part);
  };
  ByteClasses c;
  for (int part = 0; part < 4; ++part) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * part));
    // A digit d has d - '0' in 0..9 (bytes wrap around): min(d - '0', 9) == d - '0'.
    const __m128i off = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    c.digits |= mask16(_mm_cmpeq_epi8(_mm_min_epu8(off, _mm_set1_epi8(9)), off), part);
    c.minus |= mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')), part);
    c.comma |= mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), part);
    c.close |= mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8(']')), part);
    c.space |= mask16(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), part);
  }
  return c;
}
#endif

// The classes of p[0, kScanWindow).
inline ByteClasses ClassifyWindow(const uint8_t* p) {
#ifdef __SSE2__
  if (SimdAllowed()) return ClassifyWindowSse2(p);
#endif
  return ClassifyWindowPortable(p);
}

inline uint64_t Load8(const uint8_t* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

// The value of the first `len` (1..8) of the eight bytes at p, which must be ASCII digits.
inline uint32_t DigitsValue(const uint8_t* p, int len) {
  // The digits shifted to the top read as an eight-digit number with leading zeros; then
  // pairs, quads and halves combine in three multiplications (the fast_float/simdjson trick).
  uint64_t v = (Load8(p) - 0x3030303030303030) << (8 * (8 - len));
  v = v * 10 + (v >> 8);
  v = (((v & 0x000000FF000000FF) * (100 + (1000000ULL << 32))) +
       (((v >> 16) & 0x000000FF000000FF) * (1 + (10000ULL << 32)))) >> 32;
  return static_cast<uint32_t>(v);
}

}  // namespace actorserve
