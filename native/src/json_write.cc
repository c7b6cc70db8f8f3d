// Typed arrays -> nested JSON lists; see json_write.h for the text format.
#include "json_write.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "float32_decimal.h"

namespace actorserve {
namespace {

constexpr size_t kMaxElementChars = 32;  // longest element text is 25 chars ("-0.0000012345678901234567")

inline char* Copy(char* out, const char* s, size_t n) {
  std::memcpy(out, s, n);
  return out + n;
}

// Lays out significant digits d[0..k) with the decimal point after n of them the way
// ECMAScript's Number::toString does, plus ".0" when the result would read as an integer.
char* LayOut(char* out, const char* digits, int k, int n) {
  if (k <= n && n <= 21) {
    out = Copy(out, digits, k);
    for (int z = k; z < n; ++z) *out++ = '0';
    return Copy(out, ".0", 2);
  }
  if (0 < n && n <= 21) {
    out = Copy(out, digits, n);
    *out++ = '.';
    return Copy(out, digits + n, k - n);
  }
  if (-6 < n && n <= 0) {
    *out++ = '0';
    *out++ = '.';
    for (int z = 0; z < -n; ++z) *out++ = '0';
    return Copy(out, digits, k);
  }
  *out++ = digits[0];
  if (k > 1) {
    *out++ = '.';
    out = Copy(out, digits + 1, k - 1);
  }
  *out++ = 'e';
  *out++ = n - 1 >= 0 ? '+' : '-';
  const auto r = std::to_chars(out, out + 8, n - 1 >= 0 ? n - 1 : 1 - n);
  return r.ptr;
}

// Shortest round-trip digits by std::to_chars (Ryu in libstdc++: shortest, then nearest,
// ties to even), then LayOut. (A hand-rolled double-arithmetic float32 shortcut was tried and
// measured no faster, so it is not here.)
template <typename F>
char* WriteShortest(char* out, F v) {
  char sci[40];
  const auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  const char* s = sci;
  if (*s == '-') *out++ = *s++;
  char digits[24];
  int k = 0;
  while (s < r.ptr && *s != 'e') {
    if (*s != '.') digits[k++] = *s;
    ++s;
  }
  ++s;  // 'e'
  int esign = 1;
  if (*s == '-') {
    esign = -1;
    ++s;
  } else if (*s == '+') {
    ++s;
  }
  int e = 0;
  while (s < r.ptr) e = e * 10 + (*s++ - '0');
  return LayOut(out, digits, k, esign * e + 1);
}

// "00".."99", for writing two digits at a time.
constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Number of decimal digits of v (1 <= v < 10^9), without branches.
inline int DecimalLength(uint32_t v) {
  static constexpr uint32_t kPowers[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};
  const int t = ((32 - __builtin_clz(v)) * 1233) >> 12;  // floor(log10(2^bits)), one too low at most
  return t + 1 - static_cast<int>(v < kPowers[t]);
}

// v < 10^9 as nine digits, zero-padded, at out[0..9): the same five steps for every v.
inline void WriteNineDigits(char* out, uint32_t v) {
  const uint32_t top = v / 100000000;
  const uint32_t rest = v - top * 100000000;
  const uint32_t high = rest / 10000;
  const uint32_t low = rest - high * 10000;
  out[0] = static_cast<char>('0' + top);
  std::memcpy(out + 1, kDigitPairs + 2 * (high / 100), 2);
  std::memcpy(out + 3, kDigitPairs + 2 * (high % 100), 2);
  std::memcpy(out + 5, kDigitPairs + 2 * (low / 100), 2);
  std::memcpy(out + 7, kDigitPairs + 2 * (low % 100), 2);
}

// A finite, non-zero float32: Schubfach's digits (float32_decimal.h) in LayOut's format. The
// usual case for model outputs, 1e-6 <= |v| with a fraction ("-12.5", "0.0125"), is written
// with fixed-size copies and no branch on the sign, the digit count or the position of the
// point: those are as good as random from one output to the next, and a misprediction costs
// about as much as the whole conversion. `out` needs 32 bytes (the copies write past the text).
char* WriteFloat32Shortest(char* out, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  *out = '-';
  out += bits >> 31;
  const Decimal32 d = ShortestDecimal32(std::fabs(v));
  const int k = DecimalLength(d.significand);
  const int n = k + d.exponent;  // the decimal point sits after n digits
  char nine[32];
  WriteNineDigits(nine, d.significand);
  const char* digits = nine + 9 - k;
  if (-6 < n && n < k) {
    // "12.5": the first digits, the point after n of them, the digits from n on. "0.0125":
    // "0.0000..", then all digits after the 1 - n zeros. Both as two copies whose sources and
    // destinations are picked without a branch, and which never read the output back (moving
    // the fraction digits by reading them from `out` again measured 5-7 % slower).
    const bool whole = n > 0;
    std::memcpy(out, whole ? digits : "0.000000", 8);
    out[whole ? n : 1] = '.';
    std::memcpy(whole ? out + n + 1 : out + 2 - n, whole ? digits + n : digits, 16);
    return out + (whole ? k + 1 : 2 - n + k);
  }
  return LayOut(out, digits, k, n);
}

template <typename F>
char* WriteFloat(char* out, F v) {
  if (std::isnan(v)) return Copy(out, "\"NaN\"", 5);
  if (std::isinf(v)) return v > 0 ? Copy(out, "\"Infinity\"", 10) : Copy(out, "\"-Infinity\"", 11);
  if (v == 0) return std::signbit(v) ? Copy(out, "-0.0", 4) : Copy(out, "0.0", 3);
  return WriteShortest(out, v);
}

template <typename T>
inline char* WriteElement(char* out, T v) {
  if constexpr (std::is_same_v<T, float>) {
    return WriteFloat32(out, v);
  } else if constexpr (std::is_same_v<T, double>) {
    return WriteFloat64(out, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? Copy(out, "true", 4) : Copy(out, "false", 5);
  } else {
    return std::to_chars(out, out + kMaxElementChars, v).ptr;
  }
}

template <typename T, typename Stored = T>
class Nested {
 public:
  Nested(const Stored* data, const double* shape, size_t rank, JsonBuffer* out)
      : data_(data), shape_(shape), rank_(rank), out_(out) {}

  bool Run() {
    if (rank_ == 0) {
      char* p = out_->Reserve(kMaxElementChars);
      if (p == nullptr) return false;
      out_->Commit(WriteElement<T>(p, static_cast<T>(data_[0])));
      return true;
    }
    return Level(0);
  }

 private:
  bool Level(size_t level) {
    const size_t d = static_cast<size_t>(shape_[level]);
    if (level + 1 == rank_) {
      for (size_t j = 0; j < d; ++j) {
        char* p = out_->Reserve(kMaxElementChars + 2);
        if (p == nullptr) return false;
        *p++ = j == 0 ? '[' : ',';
        p = WriteElement<T>(p, static_cast<T>(data_[index_++]));
        out_->Commit(p);
      }
      char* p = out_->Reserve(2);
      if (p == nullptr) return false;
      if (d == 0) *p++ = '[';
      *p++ = ']';
      out_->Commit(p);
      return true;
    }
    char* p = out_->Reserve(1);
    if (p == nullptr) return false;
    *p++ = '[';
    out_->Commit(p);
    for (size_t j = 0; j < d; ++j) {
      if (j > 0) {
        p = out_->Reserve(1);
        if (p == nullptr) return false;
        *p++ = ',';
        out_->Commit(p);
      }
      if (!Level(level + 1)) return false;
    }
    p = out_->Reserve(1);
    if (p == nullptr) return false;
    *p++ = ']';
    out_->Commit(p);
    return true;
  }

  const Stored* data_;
  const double* shape_;
  size_t rank_;
  JsonBuffer* out_;
  size_t index_ = 0;
};

template <typename T, typename Stored = T>
bool Write(const void* data, const double* shape, size_t rank, JsonBuffer* out) {
  out->Clear();
  Nested<T, Stored> nested(static_cast<const Stored*>(data), shape, rank, out);
  return nested.Run() && out->size() <= kMaxJsonOutput;
}

}  // namespace

char* JsonBuffer::Grow(size_t k) {
  if (fixed_ || len_ > kMaxJsonOutput) return nullptr;
  size_t cap = cap_ * 2;
  if (cap < len_ + k + 4096) cap = len_ + k + 4096;
  std::unique_ptr<char[]> bigger(new char[cap]);  // not zero-filled
  if (len_ > 0) std::memcpy(bigger.get(), data_, len_);
  owned_ = std::move(bigger);
  data_ = owned_.get();
  cap_ = cap;
  return data_ + len_;
}

char* WriteFloat32(char* out, float v) {
  if (std::isfinite(v) && v != 0) return WriteFloat32Shortest(out, v);
  return WriteFloat(out, v);  // zeros, infinities and NaN
}

char* WriteFloat64(char* out, double v) { return WriteFloat(out, v); }

std::string CheckJsonShape(const double* shape, size_t rank, size_t count) {
  if (rank > kMaxJsonRank) return "shape has more than 64 dimensions";
  double elements = 1;
  double lists = 0;
  for (size_t k = 0; k < rank; ++k) {
    const double d = shape[k];
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) {
      return "shape dimension " + std::to_string(k) + " is not a non-negative integer";
    }
    lists += elements;
    elements *= d;
  }
  if (elements != static_cast<double>(count)) return "shape does not match the data length " + std::to_string(count);
  if (2 * lists + elements > static_cast<double>(kMaxJsonOutput)) return "JSON output too large";
  return std::string();
}

bool WriteJson(ElementType type, const void* data, const double* shape, size_t rank, std::string* out) {
  JsonBuffer buffer;
  const bool ok = WriteJson(type, data, shape, rank, &buffer);
  out->assign(buffer.data() != nullptr ? buffer.data() : "", buffer.size());
  return ok;
}

bool WriteJson(ElementType type, const void* data, const double* shape, size_t rank, JsonBuffer* out) {
  switch (type) {
    case ElementType::kFloat32: return Write<float>(data, shape, rank, out);
    case ElementType::kFloat64: return Write<double>(data, shape, rank, out);
    case ElementType::kInt8: return Write<int8_t>(data, shape, rank, out);
    case ElementType::kUint8: return Write<uint8_t>(data, shape, rank, out);
    case ElementType::kInt16: return Write<int16_t>(data, shape, rank, out);
    case ElementType::kUint16: return Write<uint16_t>(data, shape, rank, out);
    case ElementType::kInt32: return Write<int32_t>(data, shape, rank, out);
    case ElementType::kUint32: return Write<uint32_t>(data, shape, rank, out);
    case ElementType::kInt64: return Write<int64_t>(data, shape, rank, out);
    case ElementType::kUint64: return Write<uint64_t>(data, shape, rank, out);
    case ElementType::kBool: return Write<bool, uint8_t>(data, shape, rank, out);
  }
  return false;
}

}  // namespace actorserve
