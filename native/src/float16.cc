// IEEE 754 binary16 <-> binary32 conversion over whole typed arrays.
// float32 -> float16 rounds to nearest, ties to even; overflow -> Inf. NaNs convert the way
// IEEE 754 and x86 F16C hardware do: the result is a quiet NaN of the same sign keeping the
// payload bits that fit (so the F16C and scalar paths agree bit for bit, and so does
// native/js-float16.ts).
#include "float16.h"

#include <cstdint>
#include <cstring>

#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ACTORSERVE_F16C 1
#endif

namespace actorserve {
namespace {

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x400000u : 0u);  // NaNs come out quiet
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // Inf, or NaN: quiet, top payload bits kept
    return sign | 0x7c00u | (absx > 0x7f800000u ? (0x200u | ((absx >> 13) & 0x3ffu)) : 0u);
  }
  if (absx >= 0x477ff000u) {  // rounds to >= 65520 -> Inf
    return sign | 0x7c00u;
  }
  if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (absx < 0x33000000u) return sign;  // < 2^-25 rounds to zero
    const uint32_t exp = absx >> 23;
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14 + (113 - exp) ... aligns to 2^-24 units
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t half = ((absx >> 13) - ((127 - 15) << 10));
  const uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return sign | static_cast<uint16_t>(half);
}

void HalfToFloatScalar(const uint16_t* s, float* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = HalfToFloat(s[i]);
}

void FloatToHalfScalar(const float* s, uint16_t* d, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = FloatToHalf(s[i]);
}

#ifdef ACTORSERVE_F16C
// F16C converts 8 values per instruction with the same IEEE semantics as the scalar code
// (round to nearest even; rounding taken from the immediate, not MXCSR).
__attribute__((target("avx,f16c"))) void HalfToFloatF16C(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  HalfToFloatScalar(s + i, d + i, n - i);
}

__attribute__((target("avx,f16c"))) void FloatToHalfF16C(const float* s, uint16_t* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(s + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  FloatToHalfScalar(s + i, d + i, n - i);
}

// SimdAllowed() false forces the scalar code (tests compare both paths with JS).
bool HasF16C() {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c") && SimdAllowed();
  return has;
}
#endif

void HalfToFloatArray(const uint16_t* s, float* d, size_t n) {
#ifdef ACTORSERVE_F16C
  if (HasF16C()) return HalfToFloatF16C(s, d, n);
#endif
  HalfToFloatScalar(s, d, n);
}

void FloatToHalfArray(const float* s, uint16_t* d, size_t n) {
#ifdef ACTORSERVE_F16C
  if (HasF16C()) return FloatToHalfF16C(s, d, n);
#endif
  FloatToHalfScalar(s, d, n);
}

bool CheckArgs(const Napi::CallbackInfo& info, napi_typedarray_type src, napi_typedarray_type dst) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != src ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != dst) {
    Napi::TypeError::New(env, "expected (source, destination) typed arrays of the right kinds")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (info[0].As<Napi::TypedArray>().ElementLength() != info[1].As<Napi::TypedArray>().ElementLength()) {
    Napi::RangeError::New(env, "source and destination lengths differ").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value Float16ToFloat32(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, napi_uint16_array, napi_float32_array)) return info.Env().Undefined();
  auto src = info[0].As<Napi::Uint16Array>();
  auto dst = info[1].As<Napi::Float32Array>();
  HalfToFloatArray(src.Data(), dst.Data(), src.ElementLength());
  return info.Env().Undefined();
}

Napi::Value Float32ToFloat16(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, napi_float32_array, napi_uint16_array)) return info.Env().Undefined();
  auto src = info[0].As<Napi::Float32Array>();
  auto dst = info[1].As<Napi::Uint16Array>();
  FloatToHalfArray(src.Data(), dst.Data(), src.ElementLength());
  return info.Env().Undefined();
}

}  // namespace

void InitFloat16(Napi::Env env, Napi::Object exports) {
  exports.Set("float16ToFloat32", Napi::Function::New(env, Float16ToFloat32, "float16ToFloat32"));
  exports.Set("float32ToFloat16", Napi::Function::New(env, Float32ToFloat16, "float32ToFloat16"));
}

}  // namespace actorserve
