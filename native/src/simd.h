// The addon's one switch for its SIMD paths (float16's F16C, the parser's SSE2 byte classes):
// ACTORSERVE_NATIVE_NO_SIMD=1 turns them all off, so that tests can compare the scalar code.
#pragma once

#include <cstdlib>

namespace actorserve {

inline bool SimdAllowed() {
  static const bool allowed = std::getenv("ACTORSERVE_NATIVE_NO_SIMD") == nullptr;
  return allowed;
}

}  // namespace actorserve
