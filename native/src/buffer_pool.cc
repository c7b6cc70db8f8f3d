// Large result buffers are recycled: touching fresh memory costs a page fault per 4 KiB (8-13
// us each on the VMs we measured, i.e. 2-9 ms for one 224x224x3 image as float64 or a 1M-element
// float32 array, more than computing it). A buffer handed to JS as an external ArrayBuffer
// comes back here when V8 collects it (Node runs the finalizer from the event loop) and is
// reused, already mapped, by a later call. Process-wide and mutex-protected (worker threads
// share it; a finalizer may run on any of them), at most 64 MiB kept, never destroyed
// (finalizers may run during exit).
#include "buffer_pool.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace actorserve {
namespace {

class BufferPool {
 public:
  static constexpr size_t kMaxKept = size_t{64} << 20;

  static BufferPool& Get() {
    static BufferPool* pool = new BufferPool();
    return *pool;
  }

  // A block of at least `bytes` (its capacity in *capacity), or nullptr.
  void* Acquire(size_t bytes, size_t* capacity) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t k = free_.size(); k-- > 0;) {  // most recently released first
        if (free_[k].capacity >= bytes && free_[k].capacity <= 2 * bytes) {
          const Block b = free_[k];
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(k));
          kept_ -= b.capacity;
          *capacity = b.capacity;
          return b.data;
        }
      }
    }
    const size_t cap = (bytes + 65535) & ~size_t{65535};
    *capacity = cap;
    return std::malloc(cap);
  }

  void Release(void* data, size_t capacity) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (kept_ + capacity <= kMaxKept) {
        free_.push_back(Block{data, capacity});
        kept_ += capacity;
        return;
      }
    }
    std::free(data);
  }

 private:
  struct Block {
    void* data;
    size_t capacity;
  };
  std::mutex mu_;
  std::vector<Block> free_;
  size_t kept_ = 0;
};

void ReleaseToPool(napi_env /*env*/, void* data, void* hint) {
  BufferPool::Get().Release(data, reinterpret_cast<size_t>(hint));
}

Napi::Value AllocPooled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double bytes = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(bytes >= 0 && bytes <= 9007199254740991.0)) {
    Napi::TypeError::New(env, "allocPooled: expected a byte count").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return NewPooledArrayBuffer(env, static_cast<size_t>(bytes));
}

}  // namespace

Napi::Value NewPooledArrayBuffer(Napi::Env env, size_t bytes) {
  if (bytes >= kPoolMinBytes) {
    size_t capacity = 0;
    void* block = BufferPool::Get().Acquire(bytes, &capacity);
    if (block != nullptr) {
      napi_value ab;
      if (napi_create_external_arraybuffer(env, block, bytes, ReleaseToPool, reinterpret_cast<void*>(capacity),
                                           &ab) == napi_ok) {
        return Napi::Value(env, ab);
      }
      BufferPool::Get().Release(block, capacity);  // e.g. a runtime without external buffers
      if (env.IsExceptionPending()) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
    }
  }
  return Napi::ArrayBuffer::New(env, bytes);
}

Napi::Value PooledArrayBufferCopy(Napi::Env env, const void* data, size_t bytes) {
  Napi::Value v = NewPooledArrayBuffer(env, bytes);
  if (env.IsExceptionPending() || v.IsEmpty()) return v;
  if (bytes > 0) std::memcpy(v.As<Napi::ArrayBuffer>().Data(), data, bytes);
  return v;
}

void InitBufferPool(Napi::Env env, Napi::Object exports) {
  exports.Set("allocPooled", Napi::Function::New(env, AllocPooled, "allocPooled"));
}

}  // namespace actorserve
