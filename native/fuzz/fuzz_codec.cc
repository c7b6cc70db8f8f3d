// Sanitizer fuzz loop for the pure C++ codec (no Node): random mutations of seed bodies
// through ParseRequestBody, random shapes/values through WriteJson (growing and fixed-window
// buffers). Not part of the addon
// build (CMakeLists.txt globs native/src only). Build and run from the repository root:
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
//     -Inative/src native/fuzz/fuzz_codec.cc native/src/json_parse.cc native/src/json_write.cc
//     native/src/float32_decimal.cc
//     -o /tmp/fuzz_codec && /tmp/fuzz_codec 2000000
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "json_parse.h"
#include "json_scan.h"
#include "json_write.h"

using actorserve::ParseError;
using actorserve::ParsedRequest;

static const char* kSeeds[] = {
    R"({"instances":{"x1":[[1.0,1.0],[1.0,1.0]],"x2":[[1.0,1.0],[1.0,1.0]]}})",
    R"({"instances":[{"a":1,"b":[1,2,3]},{"a":-2.5e-3,"b":[4,5,6]}]})",
    R"({"instances":[{"image":[[[255,0,12],[1,2,3]],[[4,5,6],[7,8,9]]]}]})",
    R"({"instances":[{"s":"h\u00e9llo \ud83d\ude00","t":["a","b"],"u":"w\u00f6rld"}]})",
    R"({"instances":[{"b":[[true,false],[false,true]],"c":true}]})",
    R"({"instances":[{"x":{"b64":"AAAAAA==","type":"fp32","shape":[1,1]}}]})",
    R"({"meta":{"k":[1,{"x":null}],"z":"\n"},"instances":[{"e":[[],[]],"z":0}],"more":[true,false,null]})",
    R"({"instances":[{"n":[123456789012345678901234567890, 1e-320, 0.1, -0, 1E+2, 1e400]}]})",
};

// Long image-like bodies (rows of three ints, compact or with ", "), which the parser's fast
// path for numeric lists takes in 64-byte windows; the short seeds hardly reach it.
static std::string ImageSeed(std::mt19937_64& rng, const char* sep) {
  std::string s = "{\"instances\":[{\"image\":[";
  for (int row = 0; row < 40; ++row) {
    if (row > 0) s += sep;
    s += "[";
    for (int k = 0; k < 3; ++k) {
      if (k > 0) s += sep;
      if (rng() % 4 == 0) s += "-";
      s += std::to_string(rng() % (rng() % 8 == 0 ? 1000000000 : 256));
    }
    s += "]";
  }
  return s + "]}]}";
}

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
  std::mt19937_64 rng(12345);
  const std::string alphabet = "[]{},:\"\\-+.eE0123456789tfnulrsaNI \n\t";
  std::vector<std::string> seeds(std::begin(kSeeds), std::end(kSeeds));
  seeds.push_back(ImageSeed(rng, ","));
  seeds.push_back(ImageSeed(rng, ", "));
  long accepted = 0;
  for (long it = 0; it < iterations; ++it) {
#ifdef __SSE2__
    // The fast path's byte classes: SSE2 and the portable code agree.
    uint8_t window[actorserve::kScanWindow];
    for (uint8_t& c : window) c = (rng() % 4) ? alphabet[rng() % alphabet.size()] : static_cast<uint8_t>(rng());
    const actorserve::ByteClasses a = actorserve::ClassifyWindowSse2(window);
    const actorserve::ByteClasses p = actorserve::ClassifyWindowPortable(window);
    if (a.digits != p.digits || a.minus != p.minus || a.comma != p.comma || a.close != p.close || a.space != p.space) {
      std::printf("byte classes differ at iteration %ld\n", it);
      return 1;
    }
#endif
    std::string b = seeds[static_cast<size_t>(it) % seeds.size()];
    const int muts = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < muts; ++m) {
      const size_t at = b.empty() ? 0 : rng() % (b.size() + 1);
      const char c = (rng() % 8) ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() & 0xFF);
      switch (rng() % 6) {
        case 0: if (!b.empty()) b[std::min(at, b.size() - 1)] = c; break;
        case 1: b.insert(b.begin() + static_cast<long>(at), c); break;
        case 2: b.erase(std::min(at, b.size()), 1 + rng() % 4); break;
        case 3: if (!b.empty()) { size_t from = rng() % b.size(); b.insert(rng() % (b.size() + 1), b.substr(from, 1 + rng() % 16)); } break;
        case 4: b.resize(std::min(at, b.size())); break;
        default: b.insert(std::min(at, b.size()), std::string(1 + rng() % 80, rng() % 2 ? '[' : '{'));
      }
    }
    // Exact-size heap copy so ASan sees any read past the end.
    std::vector<uint8_t> body(b.begin(), b.end());
    uint8_t* heap = static_cast<uint8_t*>(std::malloc(std::max<size_t>(body.size(), 1)));
    if (!body.empty()) std::memcpy(heap, body.data(), body.size());
    ParsedRequest req;
    ParseError err;
    if (actorserve::ParseRequestBody(body.empty() ? nullptr : heap, body.size(), &req, &err)) ++accepted;
    std::free(heap);

    // Writer: random small shapes and random bit patterns.
    const size_t rank = rng() % 4;
    double shape[4];
    size_t count = 1;
    for (size_t k = 0; k < rank; ++k) {
      shape[k] = static_cast<double>(rng() % 5);
      count *= static_cast<size_t>(shape[k]);
    }
    std::vector<uint64_t> data(count + 1);
    for (auto& v : data) v = rng();
    if (actorserve::CheckJsonShape(shape, rank, count).empty()) {
      std::string out;
      const auto type = static_cast<actorserve::ElementType>(rng() % 11);
      if (!actorserve::WriteJson(type, data.data(), shape, rank, &out)) return 1;
      // Into a fixed window (writeJsonInto): a heap block of exactly its size, so ASan sees any
      // write past it. Big enough (text + the writer's 34-byte slack) it must fit; smaller it
      // must refuse.
      const size_t cut = rng() % 40;
      const size_t room = out.size() + 34 - std::min(cut, out.size() + 34);
      char* window = static_cast<char*>(std::malloc(room));
      actorserve::JsonBuffer fixed(window, room);
      const bool fits = actorserve::WriteJson(type, data.data(), shape, rank, &fixed);
      if (room >= out.size() + 34 && !fits) return 2;
      if (fits && (fixed.size() != out.size() || std::memcmp(window, out.data(), out.size()) != 0)) return 3;
      if (room < out.size() && fits) return 4;
      std::free(window);
    }
  }
  std::printf("%ld iterations, %ld accepted\n", iterations, accepted);
  return 0;
}
