// Schubfach for binary32; see float32_decimal.h. Notation follows the paper: the float is
// c * 2^q; its rounding interval, scaled by 4, is [cbl, cbr] * 2^(q-2); k is chosen so that
// the interval times 10^-k has at most one multiple of 10 in it (then the shortest decimal has
// the digits of s = floor(v * 10^-k) or one digit fewer).
#include "float32_decimal.h"

#include <cstring>

namespace actorserve {
namespace {

// g(k) = ceil(10^k / 2^r) with r = floor(log2 10^k) - 63, so 2^63 <= g(k) < 2^64: 10^k to 64
// significant bits, rounded up (exact for k >= 0). k spans what binary32 needs, -31..45.
// Generated with BigInt: g = ceil(10^k * 2^-r).
constexpr int kMinPow10 = -31;
constexpr uint64_t kPow10[] = {
    0x81CEB32C4B43FCF5, 0xA2425FF75E14FC32, 0xCAD2F7F5359A3B3F, 0xFD87B5F28300CA0E,  // -31..-28
    0x9E74D1B791E07E49, 0xC612062576589DDB, 0xF79687AED3EEC552, 0x9ABE14CD44753B53,  // -27..-24
    0xC16D9A0095928A28, 0xF1C90080BAF72CB2, 0x971DA05074DA7BEF, 0xBCE5086492111AEB,  // -23..-20
    0xEC1E4A7DB69561A6, 0x9392EE8E921D5D08, 0xB877AA3236A4B44A, 0xE69594BEC44DE15C,  // -19..-16
    0x901D7CF73AB0ACDA, 0xB424DC35095CD810, 0xE12E13424BB40E14, 0x8CBCCC096F5088CC,  // -15..-12
    0xAFEBFF0BCB24AAFF, 0xDBE6FECEBDEDD5BF, 0x89705F4136B4A598, 0xABCC77118461CEFD,  // -11..-8
    0xD6BF94D5E57A42BD, 0x8637BD05AF6C69B6, 0xA7C5AC471B478424, 0xD1B71758E219652C,  // -7..-4
    0x83126E978D4FDF3C, 0xA3D70A3D70A3D70B, 0xCCCCCCCCCCCCCCCD, 0x8000000000000000,  // -3..0
    0xA000000000000000, 0xC800000000000000, 0xFA00000000000000, 0x9C40000000000000,  // 1..4
    0xC350000000000000, 0xF424000000000000, 0x9896800000000000, 0xBEBC200000000000,  // 5..8
    0xEE6B280000000000, 0x9502F90000000000, 0xBA43B74000000000, 0xE8D4A51000000000,  // 9..12
    0x9184E72A00000000, 0xB5E620F480000000, 0xE35FA931A0000000, 0x8E1BC9BF04000000,  // 13..16
    0xB1A2BC2EC5000000, 0xDE0B6B3A76400000, 0x8AC7230489E80000, 0xAD78EBC5AC620000,  // 17..20
    0xD8D726B7177A8000, 0x878678326EAC9000, 0xA968163F0A57B400, 0xD3C21BCECCEDA100,  // 21..24
    0x84595161401484A0, 0xA56FA5B99019A5C8, 0xCECB8F27F4200F3A, 0x813F3978F8940985,  // 25..28
    0xA18F07D736B90BE6, 0xC9F2C9CD04674EDF, 0xFC6F7C4045812297, 0x9DC5ADA82B70B59E,  // 29..32
    0xC5371912364CE306, 0xF684DF56C3E01BC7, 0x9A130B963A6C115D, 0xC097CE7BC90715B4,  // 33..36
    0xF0BDC21ABB48DB21, 0x96769950B50D88F5, 0xBC143FA4E250EB32, 0xEB194F8E1AE525FE,  // 37..40
    0x92EFD1B8D0CF37BF, 0xB7ABC627050305AE, 0xE596B7B0C643C71A, 0x8F7E32CE7BEA5C70,  // 41..44
    0xB35DBF821AE4F38C,                                                                // 45
};

// Integer approximations of logarithms, exact over the exponents binary32 reaches (the
// paper's Lemma: valid for |e| <= 1233 or more). Arithmetic shift = floor division.
inline int32_t FloorLog10Pow2(int32_t e) { return (e * 1262611) >> 22; }
inline int32_t FloorLog10ThreeQuartersPow2(int32_t e) { return (e * 1262611 - 524031) >> 22; }
inline int32_t FloorLog2Pow10(int32_t e) { return (e * 1741647) >> 19; }

// floor(g * cp / 2^64), made odd when the dropped part is not zero ("round to odd": keeps
// exact and inexact apart). g overestimates the power of ten by under one unit, which can
// only disturb the low 32 dropped bits, hence "> 1" on the next 32.
inline uint32_t RoundToOdd(uint64_t g, uint32_t cp) {
  const unsigned __int128 p = static_cast<unsigned __int128>(g) * cp;
  const uint32_t high = static_cast<uint32_t>(static_cast<uint64_t>(p >> 64));
  const uint32_t sticky = static_cast<uint32_t>(static_cast<uint64_t>(p) >> 32);
  return high | (sticky > 1 ? 1u : 0u);
}

Decimal32 Schubfach(uint32_t bits) {
  const uint32_t fraction = bits & 0x7FFFFF;
  const uint32_t biased = bits >> 23;  // sign is 0
  uint32_t c;
  int32_t q;
  if (biased != 0) {
    c = fraction | 0x800000;
    q = static_cast<int32_t>(biased) - 150;
  } else {
    c = fraction;
    q = -149;
  }
  const bool even = (c & 1) == 0;
  // At a power of two the float below is nearer than the one above.
  const bool lower_closer = fraction == 0 && biased > 1;
  const uint32_t cbl = 4 * c - 2 + (lower_closer ? 1 : 0);
  const uint32_t cb = 4 * c;
  const uint32_t cbr = 4 * c + 2;
  const int32_t k = lower_closer ? FloorLog10ThreeQuartersPow2(q) : FloorLog10Pow2(q);
  const int32_t h = q + FloorLog2Pow10(-k) + 1;  // 1..4
  const uint64_t g = kPow10[-k - kMinPow10];
  const uint32_t vbl = RoundToOdd(g, cbl << h);
  const uint32_t vb = RoundToOdd(g, cb << h);
  const uint32_t vbr = RoundToOdd(g, cbr << h);
  // The interval's ends count when c is even (round-half-even reads them back as v).
  const uint32_t lower = vbl + (even ? 0 : 1);
  const uint32_t upper = vbr - (even ? 0 : 1);

  // The candidates: s = floor(v * 10^-k) or s + 1, or one digit fewer, sp * 10 or sp * 10 + 10.
  // All tests are computed and the answer selected without branches: on real data (model
  // outputs) each of these goes either way at random, and mispredictions cost more than the
  // arithmetic.
  const uint32_t s = vb / 4;
  const uint32_t sp = s / 10;
  const bool down_in = lower <= 40 * sp;
  const bool up_in = 40 * sp + 40 <= upper;
  const bool shorter = s >= 10 && down_in != up_in;  // at most one of the two is inside
  const bool s_in = lower <= 4 * s;
  const bool t_in = 4 * s + 4 <= upper;
  // Both s and s + 1 inside (never neither, by the choice of k): the nearer, ties to even.
  const uint32_t mid = 4 * s + 2;
  // (Written with bit operations and masks: GCC turns the equivalent ?: into branches.)
  const uint32_t nearer_up = static_cast<uint32_t>(vb > mid) | (static_cast<uint32_t>(vb == mid) & s);
  const uint32_t one_in = static_cast<uint32_t>(s_in) ^ static_cast<uint32_t>(t_in);
  const uint32_t longer = s + (((one_in & static_cast<uint32_t>(t_in)) | (~one_in & nearer_up)) & 1);
  const uint32_t shorter_value = sp + static_cast<uint32_t>(up_in);
  const uint32_t pick_shorter = 0 - static_cast<uint32_t>(shorter);
  return {(shorter_value & pick_shorter) | (longer & ~pick_shorter), k + static_cast<int32_t>(shorter)};
}

}  // namespace

Decimal32 ShortestDecimal32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  Decimal32 d = Schubfach(bits);
  // A loop beats a branch-free divide-out here: most outputs have no trailing zero.
  while (d.significand % 10 == 0) {
    d.significand /= 10;
    ++d.exponent;
  }
  return d;
}

}  // namespace actorserve
