// Typed arrays -> nested JSON lists. Pure C++ (no Node-API); json_codec.cc binds it and
// native/js-codec.ts holds the byte-for-byte identical JS twin.
//
// Number text: the shortest decimal that reads back as the same value of the array's own
// type (float32 3.2 -> "3.2", not 3.200000047683716), laid out the way ECMAScript's
// Number.prototype.toString lays out digits (plain notation for 1e-7 <= |x| < 1e21, else
// "1.5e+25" / "1e-7"). Floats that come out integral get ".0" ("2.0", "-0.0") so that a
// reader (ours included) still sees a float. NaN and +/-Infinity are written as the JSON
// strings "NaN", "Infinity", "-Infinity".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace actorserve {

constexpr size_t kMaxJsonRank = 64;
// Longest string V8 can hold on 64-bit hosts ((1 << 29) - 24 one-byte characters).
constexpr size_t kMaxJsonOutput = (size_t{1} << 29) - 24;

enum class ElementType : uint8_t { kFloat32, kFloat64, kInt8, kUint8, kInt16, kUint16, kInt32, kUint32, kInt64, kUint64, kBool };

// Checks `shape` against `count` elements: rank <= kMaxJsonRank, dims non-negative integers,
// product == count, and the brackets alone fit kMaxJsonOutput. Returns "" or the problem.
std::string CheckJsonShape(const double* shape, size_t rank, size_t count);

// Output text: a growable byte buffer that is never zero-filled and keeps its memory between
// uses (a thread_local one spares the page faults of a fresh multi-megabyte buffer per call).
// Or a fixed window of someone else's memory (a JS Uint8Array): then Reserve fails instead of
// growing.
class JsonBuffer {
 public:
  JsonBuffer() = default;
  JsonBuffer(char* window, size_t capacity) : data_(window), cap_(capacity), fixed_(true) {}
  JsonBuffer(const JsonBuffer&) = delete;
  JsonBuffer& operator=(const JsonBuffer&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return len_; }
  size_t capacity() const { return cap_; }
  void Clear() { len_ = 0; }
  void Release() {
    if (fixed_) return;
    owned_.reset();
    data_ = nullptr;
    cap_ = len_ = 0;
  }
  // Room for `k` more bytes; nullptr once the text would pass kMaxJsonOutput (or the window).
  char* Reserve(size_t k) {
    if (len_ + k > cap_) return Grow(k);
    return data_ + len_;
  }
  void Commit(char* end) { len_ = static_cast<size_t>(end - data_); }

 private:
  char* Grow(size_t k);
  std::unique_ptr<char[]> owned_;
  char* data_ = nullptr;
  size_t cap_ = 0;
  size_t len_ = 0;
  bool fixed_ = false;
};

// Writes data (row-major, `shape` already checked) as nested JSON lists into *out (cleared
// first). Returns false when the text would exceed kMaxJsonOutput.
bool WriteJson(ElementType type, const void* data, const double* shape, size_t rank, JsonBuffer* out);

// The same into a std::string (tests, fuzzing).
bool WriteJson(ElementType type, const void* data, const double* shape, size_t rank, std::string* out);

// One float as text (exposed for tests and the writer itself); `out` needs 32 bytes.
char* WriteFloat32(char* out, float v);
char* WriteFloat64(char* out, double v);

}  // namespace actorserve
