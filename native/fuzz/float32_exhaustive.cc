// Every positive finite float32 through ShortestDecimal32 (Schubfach) and through
// std::to_chars (libstdc++'s Ryu): the digits and exponents must agree. The sign is handled
// outside ShortestDecimal32, so 2^31 - 2^23 values cover everything. Not part of the addon
// build. About 3 minutes on one core; an optional [first, last] bit range splits the work.
//   g++ -std=c++17 -O2 -Inative/src native/fuzz/float32_exhaustive.cc native/src/float32_decimal.cc
//     -o /tmp/float32_exhaustive && /tmp/float32_exhaustive [first last]
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "float32_decimal.h"

// std::to_chars' shortest scientific text -> significand and exponent (value = sig * 10^exp).
static actorserve::Decimal32 Reference(float v) {
  char text[48];
  const auto r = std::to_chars(text, text + sizeof text, v, std::chars_format::scientific);
  *r.ptr = '\0';
  uint32_t sig = 0;
  int digits_after_point = 0;
  bool after_point = false;
  const char* p = text;
  for (; *p != 'e'; ++p) {
    if (*p == '.') {
      after_point = true;
      continue;
    }
    sig = sig * 10 + static_cast<uint32_t>(*p - '0');
    if (after_point) ++digits_after_point;
  }
  const int exp = std::atoi(p + 1) - digits_after_point;
  actorserve::Decimal32 d{sig, exp};
  while (d.significand % 10 == 0) {
    d.significand /= 10;
    ++d.exponent;
  }
  return d;
}

int main(int argc, char** argv) {
  uint32_t first = 1;
  uint32_t last = 0x7F7FFFFF;  // FLT_MAX
  if (argc == 3) {
    first = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 0));
    last = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 0));
  }
  uint64_t mismatches = 0;
  for (uint64_t bits = first; bits <= last; ++bits) {
    float v;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&v, &b, sizeof v);
    const actorserve::Decimal32 got = actorserve::ShortestDecimal32(v);
    const actorserve::Decimal32 want = Reference(v);
    if (got.significand != want.significand || got.exponent != want.exponent) {
      if (++mismatches <= 20) {
        std::printf("0x%08X (%.9g): got %ue%d, want %ue%d\n", b, v, got.significand, got.exponent, want.significand,
                    want.exponent);
      }
    }
  }
  std::printf("checked 0x%08X..0x%08X: %llu mismatches\n", first, last, static_cast<unsigned long long>(mismatches));
  return mismatches == 0 ? 0 : 1;
}
