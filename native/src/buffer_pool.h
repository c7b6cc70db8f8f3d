// Recycled ArrayBuffers for large results (see buffer_pool.cc for why).
#pragma once
#include <napi.h>

#include <cstddef>

namespace actorserve {

// Buffers at least this large come from the pool; smaller ones are plain V8 ArrayBuffers.
constexpr size_t kPoolMinBytes = 256 * 1024;

// A new ArrayBuffer of `bytes` bytes whose contents are NOT initialised when it comes from
// the pool: the caller must overwrite all of it. Sets a pending exception and returns an empty
// value on failure.
Napi::Value NewPooledArrayBuffer(Napi::Env env, size_t bytes);

// A new ArrayBuffer holding a copy of data[0, bytes).
Napi::Value PooledArrayBufferCopy(Napi::Env env, const void* data, size_t bytes);

// Adds allocPooled(bytes) -> ArrayBuffer (uninitialised; for native/index.ts only).
void InitBufferPool(Napi::Env env, Napi::Object exports);

}  // namespace actorserve
