#pragma once
#include <napi.h>

namespace actorserve {
// Adds float16ToFloat32(src: Uint16Array, dst: Float32Array) and
// float32ToFloat16(src: Float32Array, dst: Uint16Array) to `exports`.
void InitFloat16(Napi::Env env, Napi::Object exports);
}  // namespace actorserve
