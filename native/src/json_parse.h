// REST request body parser: `{"instances": ...}` straight into flat tensors.
// Pure C++ (no Node-API): json_codec.cc turns the result into JS values. The grammar, the
// checks and every error text are mirrored line for line by native/js-codec.ts; change both
// together (test/native/parse.test.ts compares them on a table and on random mutations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace actorserve {

// Containers ('[' and '{') may nest this deep in a body, the top-level object counting as 1.
constexpr int kMaxJsonDepth = 64;

struct ParsedValue {
  enum class Kind : uint8_t { kNumbers, kBools, kStrings, kB64 };
  Kind kind = Kind::kNumbers;
  std::vector<double> shape;  // dims, row-major; empty = scalar

  // kNumbers: ParsedRequest::numbers[number_begin, number_begin + number_count); `integers`
  // when all were written without '.'/exponent.
  size_t number_begin = 0;
  size_t number_count = 0;
  bool integers = true;
  std::vector<uint8_t> bools;         // kBools: 0/1
  std::vector<std::string> strings;   // kStrings: UTF-8 (validated)

  // kB64: the raw fields of {"b64": s, "type": t, "shape": [...]}; decoding and type/shape
  // validation are the TS side's job.
  std::string b64;
  bool has_type = false;
  std::string type;
  bool has_shape = false;
  std::vector<double> b64_shape;
};

struct ParsedInstance {
  std::vector<std::pair<std::string, ParsedValue>> inputs;  // in body order, names unique
};

struct ParsedRequest {
  std::vector<ParsedInstance> instances;
  bool single = false;  // "instances" was one object rather than a list
  // Every number of every value, in body order (one arena: a caller that keeps a
  // ParsedRequest between calls keeps its capacity, which spares page faults).
  std::vector<double> numbers;
};

struct ParseError {
  size_t position = 0;  // byte offset in the body
  std::string message;  // full text, position included
};

// Parses a whole body into *out (cleared first). Returns false and fills `error` on any
// problem; never throws except std::bad_alloc. Recursion depth is bounded by kMaxJsonDepth.
bool ParseRequestBody(const uint8_t* data, size_t size, ParsedRequest* out, ParseError* error);

}  // namespace actorserve
