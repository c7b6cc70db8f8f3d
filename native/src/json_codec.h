#pragma once
#include <napi.h>

namespace actorserve {
// Adds parseInstances(body) and writeJson(kind, data, shape) to `exports` (json_codec.cc).
void InitJsonCodec(Napi::Env env, Napi::Object exports);
}  // namespace actorserve
