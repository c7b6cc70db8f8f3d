// REST request body parser. See json_parse.h; native/js-codec.ts is the line-for-line JS twin
// (same grammar, same checks in the same order, same error texts and byte positions).
#include "json_parse.h"

#include <cfloat>
#include <charconv>
#include <cstring>
#include <system_error>
#include <unordered_set>

#include "json_scan.h"

namespace actorserve {
namespace {

constexpr const char* kEndOfBody = "invalid JSON: unexpected end of body";
constexpr const char* kListedB64 =
    "a list may hold one {\"b64\": ...} object (a tensor with a leading dim of 1); send more as one object with a shape";
constexpr const char* kNanInf = "invalid JSON: NaN and Infinity are not JSON numbers";
constexpr size_t kMaxNameChars = 64;  // input names are cut to this many code points in messages

inline bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

// -x when `neg` for x >= 0 (-0.0 for 0), by the sign bit rather than a branch: signs can be
// as random as the data (a branch on them cost a third more on an image of values in
// -255..255).
inline double WithSign(double x, bool neg) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits |= static_cast<uint64_t>(neg) << 63;
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

// Clinger's fast path: the decimal significand w times 10^e as a double, when w and 10^|e| are
// both exact doubles (w <= 2^53; |e| <= 22, as 5^22 < 2^53). One IEEE multiplication or
// division of exact operands rounds once, to nearest, so it gives the correctly rounded value,
// the same as from_chars. False otherwise (the caller falls back to from_chars).
bool ExactDecimalToDouble(uint64_t w, int64_t e, double* out) {
  static_assert(FLT_EVAL_METHOD == 0, "needs double arithmetic without excess precision");
  static constexpr double kPowersOf10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                           1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                           1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (w > (uint64_t{1} << 53) || e < -22 || e > 22) return false;
  const double x = static_cast<double>(w);
  *out = e >= 0 ? x * kPowersOf10[e] : x / kPowersOf10[-e];
  return true;
}

int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendHexByte(std::string* s, uint8_t c) {
  static const char kHex[] = "0123456789ABCDEF";
  s->append("0x");
  s->push_back(kHex[c >> 4]);
  s->push_back(kHex[c & 15]);
}

// Length of the well-formed UTF-8 sequence at p (Unicode table 3-7), 0 when ill-formed.
size_t Utf8SequenceLength(const uint8_t* p, size_t avail) {
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (avail < 3) return 0;
    const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80;
    const uint8_t hi = c == 0xED ? 0x9F : 0xBF;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (avail < 4) return 0;
    const uint8_t lo = c == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = c == 0xF4 ? 0x8F : 0xBF;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
    return 4;
  }
  return 0;
}

void AppendUtf8(std::string* s, uint32_t cp) {
  if (cp < 0x80) {
    s->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// An input name as shown in messages: at most kMaxNameChars code points, then "...".
std::string DisplayName(const std::string& name) {
  size_t chars = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if ((static_cast<uint8_t>(name[i]) & 0xC0) != 0x80) {
      if (chars == kMaxNameChars) return name.substr(0, i) + "...";
      ++chars;
    }
  }
  return name;
}

// Object keys seen so far, for duplicate detection: a short list, a hash set past 8 keys.
class KeySet {
 public:
  bool Insert(const std::string& key) {
    if (big_.empty()) {
      for (const std::string& k : small_) {
        if (k == key) return false;
      }
      if (small_.size() < 8) {
        small_.push_back(key);
        return true;
      }
      big_.insert(small_.begin(), small_.end());
    }
    return big_.insert(key).second;
  }

 private:
  std::vector<std::string> small_;
  std::unordered_set<std::string> big_;
};

enum class LeafKind : uint8_t { kUnknown, kNumber, kBool, kString, kNull };

const char* KindWithArticle(LeafKind k) {
  switch (k) {
    case LeafKind::kNumber: return "a number";
    case LeafKind::kBool: return "a bool";
    case LeafKind::kString: return "a string";
    case LeafKind::kNull: return "null";
    default: return "a value";
  }
}

class Parser {
 public:
  Parser(const uint8_t* p, size_t n, ParseError* error, std::vector<double>* numbers)
      : p_(p), n_(n), error_(error), numbers_(numbers) {}

  bool ParseBody(ParsedRequest* out) {
    SkipWs();
    if (i_ >= n_ || p_[i_] != '{') return Fail(i_, "the body must be a JSON object with an 'instances' key");
    const size_t obj_pos = i_;
    if (!Enter(obj_pos)) return false;
    ++i_;
    bool have_instances = false;
    KeySet keys;
    SkipWs();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
    } else {
      for (;;) {
        SkipWs();
        std::string key;
        if (!ParseKey(&keys, &key, false)) return false;
        if (key == "instances") {
          have_instances = true;
          if (!ParseInstances(out)) return false;
        } else if (!SkipValue()) {
          return false;
        }
        SkipWs();
        if (i_ < n_ && p_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && p_[i_] == '}') {
          ++i_;
          break;
        }
        return FailExpected("',' or '}' after an object member");
      }
    }
    --depth_;
    SkipWs();
    if (i_ < n_) return Fail(i_, "invalid JSON: unexpected data after the top-level value");
    if (!have_instances) return Fail(obj_pos, "the body has no 'instances' key");
    return true;
  }

 private:
  // ---- errors ---------------------------------------------------------------------------
  bool Fail(size_t pos, const std::string& problem) {
    error_->position = pos;
    error_->message = context_;
    error_->message += pos >= n_ ? std::string(kEndOfBody) : problem;
    error_->message += " (at byte ";
    error_->message += std::to_string(pos);
    error_->message += ")";
    return false;
  }

  std::string Describe(size_t pos) const {
    std::string s;
    const uint8_t c = p_[pos];
    if (c >= 0x20 && c < 0x7F) {
      s.push_back('\'');
      s.push_back(static_cast<char>(c));
      s.push_back('\'');
    } else {
      s = "byte ";
      AppendHexByte(&s, c);
    }
    return s;
  }

  bool FailExpected(const char* what) {
    if (i_ >= n_) return Fail(i_, kEndOfBody);
    return Fail(i_, std::string("invalid JSON: expected ") + what + ", got " + Describe(i_));
  }

  bool Matches(size_t pos, const char* word) const {
    const size_t len = std::strlen(word);
    return n_ - pos >= len && std::memcmp(p_ + pos, word, len) == 0;
  }

  // A byte that cannot start a value.
  bool FailValueStart(size_t pos) {
    if (pos < n_ && (Matches(pos, "NaN") || Matches(pos, "Infinity"))) return Fail(pos, kNanInf);
    if (pos >= n_) return Fail(pos, kEndOfBody);
    return Fail(pos, "invalid JSON: unexpected " + Describe(pos));
  }

  bool Enter(size_t pos) {
    if (++depth_ > kMaxJsonDepth) {
      return Fail(pos, "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  }

  void SkipWs() {
    while (i_ < n_) {
      const uint8_t c = p_[i_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++i_;
    }
  }

  // ---- scalars ----------------------------------------------------------------------------
  // At '"'. Appends the decoded UTF-8 text to *out when out is not null.
  bool ParseString(std::string* out) {
    ++i_;
    for (;;) {
      const size_t run = i_;
      while (i_ < n_) {
        const uint8_t c = p_[i_];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++i_;
      }
      if (out != nullptr) out->append(reinterpret_cast<const char*>(p_ + run), i_ - run);
      if (i_ >= n_) return Fail(i_, kEndOfBody);
      const uint8_t c = p_[i_];
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c == '\\') {
        if (!ParseEscape(out)) return false;
      } else if (c < 0x20) {
        std::string m = "invalid JSON: control character ";
        AppendHexByte(&m, c);
        m += " in a string";
        return Fail(i_, m);
      } else {
        const size_t len = Utf8SequenceLength(p_ + i_, n_ - i_);
        if (len == 0) return Fail(i_, "invalid UTF-8 in a string");
        if (out != nullptr) out->append(reinterpret_cast<const char*>(p_ + i_), len);
        i_ += len;
      }
    }
  }

  bool Hex4(size_t pos, uint32_t* v) const {
    if (pos > n_ || n_ - pos < 4) return false;
    uint32_t x = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int h = HexValue(p_[pos + k]);
      if (h < 0) return false;
      x = (x << 4) | static_cast<uint32_t>(h);
    }
    *v = x;
    return true;
  }

  // At '\\'.
  bool ParseEscape(std::string* out) {
    const size_t esc = i_;
    ++i_;
    if (i_ >= n_) return Fail(i_, kEndOfBody);
    char simple = 0;
    switch (p_[i_]) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': break;
      default: return Fail(esc, "invalid JSON: invalid escape sequence");
    }
    if (simple != 0) {
      if (out != nullptr) out->push_back(simple);
      ++i_;
      return true;
    }
    uint32_t cu = 0;
    if (!Hex4(i_ + 1, &cu)) return Fail(esc, "invalid JSON: invalid \\u escape");
    i_ += 5;
    uint32_t cp = cu;
    if (cu >= 0xD800 && cu <= 0xDBFF) {
      if (i_ + 1 < n_ && p_[i_] == '\\' && p_[i_ + 1] == 'u') {
        uint32_t lo = 0;
        if (!Hex4(i_ + 2, &lo)) return Fail(i_, "invalid JSON: invalid \\u escape");
        if (lo < 0xDC00 || lo > 0xDFFF) return Fail(esc, "invalid JSON: unpaired UTF-16 surrogate in a \\u escape");
        cp = 0x10000 + ((cu - 0xD800) << 10) + (lo - 0xDC00);
        i_ += 6;
      } else {
        return Fail(esc, "invalid JSON: unpaired UTF-16 surrogate in a \\u escape");
      }
    } else if (cu >= 0xDC00 && cu <= 0xDFFF) {
      return Fail(esc, "invalid JSON: unpaired UTF-16 surrogate in a \\u escape");
    }
    if (out != nullptr) AppendUtf8(out, cp);
    return true;
  }

  // At '-' or a digit.
  bool ParseNumber(double* value, bool* is_int) {
    const uint8_t* const p = p_;
    const size_t n = n_;
    const size_t start = i_;
    size_t i = i_;
    bool neg = false;
    if (p[i] == '-') {
      neg = true;
      ++i;
      if (i < n && Matches(i, "Infinity")) return Fail(start, kNanInf);
      if (i >= n || !IsDigit(p[i])) return Fail(start, "invalid JSON: invalid number (no digits after '-')");
    }
    const size_t int_start = i;
    uint64_t significand = 0;  // the digits before and after '.': exact while at most 19
    if (p[i] == '0') {
      ++i;
      if (i < n && IsDigit(p[i])) return Fail(start, "invalid JSON: invalid number (leading zero)");
    } else {
      while (i < n && IsDigit(p[i])) significand = significand * 10 + (p[i++] - '0');
    }
    const size_t int_end = i;
    double d;
    if (i >= n || (p[i] != '.' && p[i] != 'e' && p[i] != 'E')) {  // an integer: the common case
      i_ = i;
      *is_int = true;
      if (int_end - int_start <= 19 && ExactDecimalToDouble(significand, 0, &d)) {
        *value = neg ? -d : d;
        return true;
      }
      return ConvertNumber(start, int_start, int_end, int_end, int_end, 0, neg, value);
    }
    size_t frac_start = i, frac_end = i;
    if (p[i] == '.') {
      ++i;
      frac_start = i;
      if (i >= n || !IsDigit(p[i])) return Fail(start, "invalid JSON: invalid number (no digits after '.')");
      while (i < n && IsDigit(p[i])) significand = significand * 10 + (p[i++] - '0');
      frac_end = i;
    }
    int64_t exp10 = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
      ++i;
      bool eneg = false;
      if (i < n && (p[i] == '+' || p[i] == '-')) {
        eneg = p[i] == '-';
        ++i;
      }
      if (i >= n || !IsDigit(p[i])) return Fail(start, "invalid JSON: invalid number (no digits in exponent)");
      while (i < n && IsDigit(p[i])) {
        if (exp10 < 1000000000) exp10 = exp10 * 10 + (p[i] - '0');
        ++i;
      }
      if (eneg) exp10 = -exp10;
    }
    i_ = i;
    *is_int = false;
    const size_t frac_digits = frac_end - frac_start;
    if ((int_end - int_start) + frac_digits <= 19 &&
        ExactDecimalToDouble(significand, exp10 - static_cast<int64_t>(frac_digits), &d)) {
      *value = neg ? -d : d;
      return true;
    }
    return ConvertNumber(start, int_start, int_end, frac_start, frac_end, exp10, neg, value);
  }

  // Correctly rounded text -> double for p_[start, i_) (grammar already checked).
  bool ConvertNumber(size_t start, size_t int_start, size_t int_end, size_t frac_start, size_t frac_end,
                     int64_t exp10, bool neg, double* value) {
    double d = 0;
    const auto r = std::from_chars(reinterpret_cast<const char*>(p_ + start),
                                   reinterpret_cast<const char*>(p_ + i_), d);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow or underflow? Decimal exponent of the leading significant digit decides.
      int64_t lead = 0;
      bool found = false;
      for (size_t k = int_start; k < int_end; ++k) {
        if (p_[k] != '0') {
          lead = static_cast<int64_t>(int_end - k) - 1;
          found = true;
          break;
        }
      }
      for (size_t k = frac_start; !found && k < frac_end; ++k) {
        if (p_[k] != '0') {
          lead = -static_cast<int64_t>(k - frac_start) - 1;
          found = true;
        }
      }
      if (found && lead + exp10 >= 0) return Fail(start, "invalid JSON: number out of range");
      d = neg ? -0.0 : 0.0;
    } else if (r.ec != std::errc() || r.ptr != reinterpret_cast<const char*>(p_ + i_)) {
      return Fail(start, "invalid JSON: invalid number");  // not reached: the grammar was checked
    }
    *value = d;
    return true;
  }

  // At 't', 'f' or 'n'.
  bool ParseLiteral(const char* word) {
    if (!Matches(i_, word)) return Fail(i_, "invalid JSON: invalid literal");
    i_ += std::strlen(word);
    return true;
  }

  // ---- generic (ignored) values -------------------------------------------------------------
  bool SkipValue() {
    SkipWs();
    if (i_ >= n_) return Fail(i_, kEndOfBody);
    const uint8_t c = p_[i_];
    if (c == '{') {
      if (!Enter(i_)) return false;
      ++i_;
      KeySet keys;
      SkipWs();
      if (i_ < n_ && p_[i_] == '}') {
        ++i_;
        --depth_;
        return true;
      }
      for (;;) {
        SkipWs();
        if (!ParseKey(&keys, nullptr, false)) return false;
        if (!SkipValue()) return false;
        SkipWs();
        if (i_ < n_ && p_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && p_[i_] == '}') {
          ++i_;
          --depth_;
          return true;
        }
        return FailExpected("',' or '}' after an object member");
      }
    }
    if (c == '[') {
      if (!Enter(i_)) return false;
      ++i_;
      SkipWs();
      if (i_ < n_ && p_[i_] == ']') {
        ++i_;
        --depth_;
        return true;
      }
      for (;;) {
        if (!SkipValue()) return false;
        SkipWs();
        if (i_ < n_ && p_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && p_[i_] == ']') {
          ++i_;
          --depth_;
          return true;
        }
        return FailExpected("',' or ']' after a list element");
      }
    }
    if (c == '"') return ParseString(nullptr);
    if (c == 't') return ParseLiteral("true");
    if (c == 'f') return ParseLiteral("false");
    if (c == 'n') return ParseLiteral("null");
    if (c == '-' || IsDigit(c)) {
      double v;
      bool is_int;
      return ParseNumber(&v, &is_int);
    }
    return FailValueStart(i_);
  }

  // At a key (after whitespace): the string, the duplicate/__proto__ checks, the ':' and the
  // whitespace after it. `b64_object` restricts keys to those of a {"b64": ...} object.
  bool ParseKey(KeySet* keys, std::string* key_out, bool b64_object) {
    if (i_ >= n_ || p_[i_] != '"') return FailExpected("a string key");
    const size_t key_pos = i_;
    std::string key;
    if (!ParseString(&key)) return false;
    if (key == "__proto__") return Fail(key_pos, "key '__proto__' is not allowed");
    if (b64_object && key != "b64" && key != "type" && key != "shape") {
      return Fail(key_pos, "unexpected key '" + DisplayName(key) +
                               "' in a {\"b64\": ...} object (allowed: b64, type, shape)");
    }
    if (!keys->Insert(key)) return Fail(key_pos, "duplicate key '" + DisplayName(key) + "'");
    SkipWs();
    if (i_ >= n_ || p_[i_] != ':') return FailExpected("':' after a key");
    ++i_;
    SkipWs();
    if (key_out != nullptr) *key_out = std::move(key);
    return true;
  }

  // ---- instances ------------------------------------------------------------------------------
  // After "instances": (whitespace skipped).
  bool ParseInstances(ParsedRequest* out) {
    if (i_ < n_ && p_[i_] == '{') {
      out->single = true;
      out->instances.emplace_back();
      return ParseInstance(0, &out->instances.back());
    }
    if (i_ >= n_ || p_[i_] != '[') return Fail(i_, "'instances' must be a list of objects or an object");
    if (!Enter(i_)) return false;
    ++i_;
    out->single = false;
    SkipWs();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      --depth_;
      return true;
    }
    for (size_t k = 0;; ++k) {
      SkipWs();
      if (i_ >= n_ || p_[i_] != '{') return Fail(i_, "instance " + std::to_string(k) + " must be an object");
      out->instances.emplace_back();
      if (!ParseInstance(k, &out->instances.back())) return false;
      SkipWs();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < n_ && p_[i_] == ']') {
        ++i_;
        --depth_;
        return true;
      }
      return FailExpected("',' or ']' after a list element");
    }
  }

  // At '{' of instance k.
  bool ParseInstance(size_t k, ParsedInstance* inst) {
    if (!Enter(i_)) return false;
    ++i_;
    KeySet keys;
    SkipWs();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
      --depth_;
      return true;
    }
    for (;;) {
      SkipWs();
      std::string name;
      if (!ParseKey(&keys, &name, false)) return false;
      context_ = "instance " + std::to_string(k) + ", input '" + DisplayName(name) + "': ";
      inst->inputs.emplace_back(std::move(name), ParsedValue());
      if (!ParseInputValue(&inst->inputs.back().second)) return false;
      context_.clear();
      SkipWs();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < n_ && p_[i_] == '}') {
        ++i_;
        --depth_;
        return true;
      }
      return FailExpected("',' or '}' after an object member");
    }
  }

  // At the first byte of an input's value.
  bool ParseInputValue(ParsedValue* v) {
    if (i_ >= n_) return Fail(i_, kEndOfBody);
    const uint8_t c = p_[i_];
    if (c == '[') {
      const size_t list_pos = i_;
      ++i_;
      SkipWs();
      if (i_ < n_ && p_[i_] == '{') return ParseListedB64(v, list_pos);
      i_ = list_pos;
      leaf_depth_ = -1;
      leaf_kind_ = LeafKind::kUnknown;
      dims_.assign(kMaxJsonDepth + 1, -1);
      path_.assign(kMaxJsonDepth + 1, 0);
      v->kind = ParsedValue::Kind::kNumbers;
      v->number_begin = numbers_->size();
      value_ = v;
      if (!ParseList(0)) return false;
      v->number_count = numbers_->size() - v->number_begin;
      for (int d = 0; d < leaf_depth_; ++d) v->shape.push_back(static_cast<double>(dims_[d]));
      switch (leaf_kind_) {
        case LeafKind::kBool: v->kind = ParsedValue::Kind::kBools; break;
        case LeafKind::kString: v->kind = ParsedValue::Kind::kStrings; break;
        case LeafKind::kNumber: v->kind = ParsedValue::Kind::kNumbers; break;
        default:  // only empty lists: a zero-sized float tensor
          v->kind = ParsedValue::Kind::kNumbers;
          v->integers = false;
      }
      return true;
    }
    if (c == '{') return ParseB64Object(v);
    if (c == '"') {
      v->kind = ParsedValue::Kind::kStrings;
      v->strings.emplace_back();
      return ParseString(&v->strings.back());
    }
    if (c == 't' || c == 'f') {
      v->kind = ParsedValue::Kind::kBools;
      v->bools.push_back(c == 't' ? 1 : 0);
      return ParseLiteral(c == 't' ? "true" : "false");
    }
    if (c == 'n') return Fail(i_, "null is not supported");
    if (c == '-' || IsDigit(c)) {
      double d;
      bool is_int;
      if (!ParseNumber(&d, &is_int)) return false;
      v->kind = ParsedValue::Kind::kNumbers;
      v->number_begin = numbers_->size();
      v->number_count = 1;
      numbers_->push_back(d);
      v->integers = is_int;
      return true;
    }
    return FailValueStart(i_);
  }

  std::string Path(int len) const {
    std::string s = "[";
    for (int k = 0; k < len; ++k) {
      if (k > 0) s.push_back(',');
      s += std::to_string(path_[k]);
    }
    s.push_back(']');
    return s;
  }

  // ---- the fast path of numeric lists -----------------------------------------------------
  // Image-like bodies are mostly short integers, one after another. Read byte by byte, the end
  // of each is a branch the CPU cannot predict, and the next number's position waits on it.
  // Here a number's length is one count of trailing zeros in a bit mask of the digits of a
  // 64-byte window (json_scan.h). The fast path takes only what is certainly valid and
  // reports nothing: it stops before anything else (whitespace other than one space after a
  // comma, floats, long numbers, errors, the end of the body where no window fits) and the
  // general code goes on from there, so results, errors and their positions stay the same.

  // Last window offset where a number may start: it reads 11 bytes from there (a sign, eight
  // digits loaded at once, the byte after the digits, a space after a comma).
  static constexpr size_t kMaxNumberOffset = kScanWindow - 11;

  // At an element of a list whose elements are numbers: takes the integers of 1-8 digits,
  // maybe negative, each followed by ',' or by the list's ']', counting them in *count. True
  // when it stopped after an integer followed by ']' (i_ at the ']'); false when it stopped at
  // an element it did not take (i_ at it or at whitespace before it).
  bool TakeShortInts(int64_t* count) {
    // Compact JSON (JSON.stringify) or ", " between elements (Python's json.dumps), as the
    // last comma seen said. Two instances of one loop, so that the compact one does not pay
    // for the other's check.
    return comma_space_ ? TakeShortIntsSeparatedBy<true>(count) : TakeShortIntsSeparatedBy<false>(count);
  }

  template <bool kCommaSpace>
  bool TakeShortIntsSeparatedBy(int64_t* count) {
    std::vector<double>& numbers = *numbers_;
    size_t i = i_;
    for (;;) {
      if (i < window_base_ || i - window_base_ > kMaxNumberOffset) {
        if (n_ - i < kScanWindow) break;
        window_base_ = i;
        window_ = ClassifyWindow(p_ + i);
      }
      const size_t at = i - window_base_;
      const bool neg = (window_.minus >> at) & 1;
      const size_t first = at + neg;  // the first digit
      // The digits from there; the bit at 9 stops the count where the window ends in digits.
      const int len = __builtin_ctzll((~window_.digits >> first) | (uint64_t{1} << 9));
      const size_t end = first + len;  // the byte after the digits
      if (len == 0 || len > 8 || (((window_.comma | window_.close) >> end) & 1) == 0) break;
      const uint8_t* digits = p_ + window_base_ + first;
      if (digits[0] == '0' && len > 1) break;  // a leading zero: ParseNumber reports it
      numbers.push_back(WithSign(DigitsValue(digits, len), neg));
      ++*count;
      if ((window_.close >> end) & 1) {
        i_ = window_base_ + end;
        return true;
      }
      i = window_base_ + end + 1;  // past the ','
      if (kCommaSpace) {
        if (((window_.space >> (end + 1)) & 1) == 0) break;
        ++i;
      }
    }
    i_ = i;
    return false;
  }

  // After a ',' between numbers or rows: notes whether a space follows (TakeShortInts).
  void NoteCommaStyle() { comma_space_ = i_ < n_ && p_[i_] == ' '; }

  // At an element of a list whose elements are the rows (innermost lists, at `level`) of a
  // numeric tensor: takes the rows that TakeShortInts takes whole, each followed by ',' (and
  // maybe one space), counting them in *count. True when it stopped after a row (i_ just past
  // its ']'); false when it stopped at a row it did not take (i_ at it or at whitespace
  // before it), which the general code then parses, and reports what is wrong with it.
  // The first row, parsed the general way, fixed their length and passed Enter() at the
  // depth they all share.
  bool TakeNumberRows(int level, int64_t* count) {
    const int64_t length = dims_[level];
    for (;;) {
      if (!TakeNumberRow(length)) return false;
      ++*count;
      if (i_ >= n_ || p_[i_] != ',') return true;
      ++i_;
      NoteCommaStyle();
      if (comma_space_) ++i_;
    }
  }

  // At what may be a row of `length` numbers: takes all of it, its ']' included, or nothing.
  bool TakeNumberRow(int64_t length) {
    const size_t row = i_;
    const size_t kept = numbers_->size();
    if (i_ < n_ && p_[i_] == '[') {
      ++i_;
      int64_t taken = 0;
      if (TakeShortInts(&taken) && taken == length) {
        ++i_;
        return true;
      }
    }
    i_ = row;
    numbers_->resize(kept);
    return false;
  }

  // At an element of a list at `level` whose elements are a numeric tensor's numbers (an
  // earlier leaf said so): parses the rest of the list, its ']' included, counting the
  // elements in *count. The checks are ParseElement's, which still takes any element that is
  // not a number (and reports it).
  bool ParseNumberElements(int level, int64_t* count) {
    bool try_fast = true;
    for (;;) {
      if (!(try_fast && TakeShortInts(count))) {
        SkipWs();
        bool is_int = true;
        if (!ParseNumberElement(level, *count, &is_int)) return false;
        ++*count;
        // Floats come in runs: after one, the fast path would only look at the next and stop.
        try_fast = is_int;
      }
      bool more = false;
      if (!AfterElement(&more)) return false;
      if (!more) return true;
      SkipWs();
    }
  }

  // After a list element: past its ',' (*more true; the comma's style noted for the fast
  // path) or past the list's ']' (*more false); false, with the error, at anything else.
  bool AfterElement(bool* more) {
    SkipWs();
    if (i_ < n_ && p_[i_] == ',') {
      ++i_;
      NoteCommaStyle();
      *more = true;
      return true;
    }
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      *more = false;
      return true;
    }
    return FailExpected("',' or ']' after a list element");
  }

  // Element `index` of such a list; *is_int false after a float.
  bool ParseNumberElement(int level, int64_t index, bool* is_int) {
    if (i_ < n_ && (IsDigit(p_[i_]) || p_[i_] == '-')) {
      double d;
      if (!ParseNumber(&d, is_int)) return false;
      numbers_->push_back(d);
      if (!*is_int) value_->integers = false;
      return true;
    }
    path_[level] = static_cast<size_t>(index);
    return ParseElement(level + 1);
  }

  // At '[' of a list at `level` (0 = the input's value itself); path_[0..level) locates it.
  bool ParseList(int level) {
    const size_t list_pos = i_;
    if (leaf_depth_ >= 0 && level >= leaf_depth_) {
      return Fail(list_pos, "ragged list at " + Path(level) + ": expected a scalar, got a list");
    }
    if (!Enter(list_pos)) return false;
    ++i_;
    int64_t count = 0;
    SkipWs();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
    } else {
      for (;;) {
        SkipWs();
        if (level + 1 == leaf_depth_ && leaf_kind_ == LeafKind::kNumber) {
          // From the first leaf of the tensor on (in its first list: from the second element).
          if (!ParseNumberElements(level, &count)) return false;
          break;
        }
        // The rows of a numeric tensor (known once its first row is parsed) go the fast way.
        const bool rows_known = level + 2 == leaf_depth_ && leaf_kind_ == LeafKind::kNumber;
        if (!(rows_known && TakeNumberRows(level + 1, &count))) {
          SkipWs();
          path_[level] = static_cast<size_t>(count);
          if (!ParseElement(level + 1)) return false;
          ++count;
        }
        bool more = false;
        if (!AfterElement(&more)) return false;
        if (!more) break;
      }
    }
    --depth_;
    if (dims_[level] < 0) {  // the first list at this level fixes its length
      dims_[level] = count;
      if (count == 0 && leaf_depth_ < 0) leaf_depth_ = level + 1;
    } else if (count != dims_[level]) {
      return Fail(list_pos, "ragged list at " + Path(level) + ": expected " + std::to_string(dims_[level]) +
                                " elements, got " + std::to_string(count));
    }
    return true;
  }

  // At an element of a list; `level` is the element's own depth (path_[0..level) locates it).
  bool ParseElement(int level) {
    const size_t pos = i_;
    if (i_ >= n_) return Fail(i_, kEndOfBody);
    const uint8_t c = p_[i_];
    if (c == '[') return ParseList(level);
    if (c == '{') return Fail(pos, "objects are not supported inside lists at " + Path(level));
    LeafKind kind;
    if (c == '"') {
      kind = LeafKind::kString;
    } else if (c == 't' || c == 'f') {
      kind = LeafKind::kBool;
    } else if (c == 'n') {
      kind = LeafKind::kNull;
    } else if (c == '-' || IsDigit(c)) {
      kind = LeafKind::kNumber;
    } else {
      return FailValueStart(pos);
    }
    if (leaf_depth_ < 0) {
      leaf_depth_ = level;
    } else if (level < leaf_depth_) {
      const int64_t want = dims_[level];
      return Fail(pos, "ragged list at " + Path(level) + ": expected a list" +
                           (want >= 0 ? " of " + std::to_string(want) + " elements" : std::string()) + ", got " +
                           KindWithArticle(kind));
    }
    if (kind == LeafKind::kNull) return Fail(pos, "null is not supported at " + Path(level));
    if (leaf_kind_ == LeafKind::kUnknown) {
      leaf_kind_ = kind;
    } else if (kind != leaf_kind_) {
      return Fail(pos, "mixed element kinds at " + Path(level) + ": expected " + KindWithArticle(leaf_kind_) +
                           ", got " + KindWithArticle(kind));
    }
    switch (kind) {
      case LeafKind::kString:
        value_->strings.emplace_back();
        return ParseString(&value_->strings.back());
      case LeafKind::kBool:
        value_->bools.push_back(c == 't' ? 1 : 0);
        return ParseLiteral(c == 't' ? "true" : "false");
      default: {
        double d;
        bool is_int;
        if (!ParseNumber(&d, &is_int)) return false;
        numbers_->push_back(d);
        if (!is_int) value_->integers = false;
        return true;
      }
    }
  }

  // At the first element, an object, of the list that opens an input's value at `list_pos`:
  // `[{"b64": ...}]` (MindSpore's form of a bytes tensor of shape [1]) is the object with a
  // leading dim of 1 added to its shape.
  bool ParseListedB64(ParsedValue* v, size_t list_pos) {
    if (!Enter(list_pos)) return false;
    if (!ParseB64Object(v)) return false;
    SkipWs();
    if (i_ < n_ && p_[i_] == ',') return Fail(i_, kListedB64);
    if (i_ >= n_ || p_[i_] != ']') return FailExpected("']' after a list element");
    ++i_;
    --depth_;
    v->b64_shape.insert(v->b64_shape.begin(), 1.0);
    v->has_shape = true;
    return true;
  }

  // At '{' of an input's value: {"b64": "...", "type": "...", "shape": [...]}.
  bool ParseB64Object(ParsedValue* v) {
    const size_t obj_pos = i_;
    if (!Enter(obj_pos)) return false;
    ++i_;
    v->kind = ParsedValue::Kind::kB64;
    bool have_b64 = false;
    KeySet keys;
    SkipWs();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
    } else {
      for (;;) {
        SkipWs();
        std::string key;
        if (!ParseKey(&keys, &key, true)) return false;
        if (key == "b64") {
          if (i_ >= n_ || p_[i_] != '"') return Fail(i_, "'b64' must be a string");
          if (!ParseString(&v->b64)) return false;
          have_b64 = true;
        } else if (key == "type") {
          if (i_ >= n_ || p_[i_] != '"') return Fail(i_, "'type' must be a string");
          if (!ParseString(&v->type)) return false;
          v->has_type = true;
        } else {
          if (!ParseShape(&v->b64_shape)) return false;
          v->has_shape = true;
        }
        SkipWs();
        if (i_ < n_ && p_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && p_[i_] == '}') {
          ++i_;
          break;
        }
        return FailExpected("',' or '}' after an object member");
      }
    }
    --depth_;
    if (!have_b64) return Fail(obj_pos, "'b64' is missing in a {\"b64\": ...} object");
    return true;
  }

  // The value of "shape": a flat list of non-negative integer literals below 2^53.
  bool ParseShape(std::vector<double>* shape) {
    constexpr const char* kBadShape = "'shape' must be a list of non-negative integers";
    if (i_ >= n_ || p_[i_] != '[') return Fail(i_, kBadShape);
    if (!Enter(i_)) return false;
    ++i_;
    SkipWs();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      --depth_;
      return true;
    }
    for (;;) {
      SkipWs();
      const size_t pos = i_;
      if (i_ >= n_ || !IsDigit(p_[i_])) return Fail(pos, kBadShape);
      double d;
      bool is_int;
      if (!ParseNumber(&d, &is_int)) return false;
      if (!is_int || d > 9007199254740991.0) return Fail(pos, kBadShape);
      shape->push_back(d);
      SkipWs();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < n_ && p_[i_] == ']') {
        ++i_;
        --depth_;
        return true;
      }
      return FailExpected("',' or ']' after a list element");
    }
  }

  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
  int depth_ = 0;
  ParseError* error_;
  std::vector<double>* numbers_;
  std::string context_;  // "instance k, input 'name': " while inside an input's value

  // State of the list value being parsed.
  ParsedValue* value_ = nullptr;
  int leaf_depth_ = -1;
  LeafKind leaf_kind_ = LeafKind::kUnknown;
  std::vector<int64_t> dims_;
  std::vector<size_t> path_;

  // The fast path's window: the classes of p_[window_base_, window_base_ + kScanWindow).
  size_t window_base_ = SIZE_MAX;  // none yet
  ByteClasses window_;
  bool comma_space_ = false;  // the last ',' between numbers or rows had a space after it
};

}  // namespace

bool ParseRequestBody(const uint8_t* data, size_t size, ParsedRequest* out, ParseError* error) {
  static const uint8_t kEmpty[1] = {0};
  out->instances.clear();
  out->numbers.clear();
  out->single = false;
  Parser parser(data != nullptr ? data : kEmpty, data != nullptr ? size : 0, error, &out->numbers);
  return parser.ParseBody(out);
}

}  // namespace actorserve
