// Entry point of the actorserve native addon: registers each module's exports.
// It holds no JS values between calls (per-thread scratch buffers and a mutex-protected pool of
// recycled result buffers only), so it loads in any number of worker threads.
#include <napi.h>

#include "buffer_pool.h"
#include "float16.h"
#include "json_codec.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  actorserve::InitFloat16(env, exports);
  actorserve::InitJsonCodec(env, exports);
  actorserve::InitBufferPool(env, exports);
  return exports;
}

NODE_API_MODULE(actorserve_native, Init)
