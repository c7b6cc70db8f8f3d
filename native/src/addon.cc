// Entry point of the actorserve native addon: registers each module's exports.
#include <napi.h>

#include "float16.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  actorserve::InitFloat16(env, exports);
  return exports;
}

NODE_API_MODULE(actorserve_native, Init)
