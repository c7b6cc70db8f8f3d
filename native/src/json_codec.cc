// Node-API bindings of the REST JSON codec: json_parse.cc (body -> flat tensors) and
// json_write.cc (typed array -> nested JSON lists). native/index.ts is the only caller; it
// validates arguments first, so the checks here only keep bad calls from crashing.
#include "json_codec.h"

#include <cstring>
#include <vector>

#include "buffer_pool.h"
#include "json_parse.h"
#include "json_write.h"

namespace actorserve {
namespace {

// Throws a JS Error carrying `code` (and `position` when >= 0); returns undefined.
Napi::Value Throw(Napi::Env env, const std::string& message, double position = -1, bool type_error = false) {
  Napi::Error err = type_error ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Value().Set("code", Napi::String::New(env, "E_INVALID_ARGUMENT"));
  if (position >= 0) err.Value().Set("position", Napi::Number::New(env, position));
  err.ThrowAsJavaScriptException();
  return env.Undefined();
}

// UTF-16 length of valid UTF-8 text: one unit per sequence, two for 4-byte ones.
size_t Utf16Length(const std::string& s) {
  size_t units = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++units;
    if (c >= 0xF0) ++units;
  }
  return units;
}

// Appends a string to the blob and its UTF-16 length to the meta tape.
void PutString(const std::string& s, std::string* blob, std::vector<double>* meta) {
  blob->append(s);
  meta->push_back(static_cast<double>(Utf16Length(s)));
}

void PutShape(const std::vector<double>& shape, std::vector<double>* meta) {
  meta->push_back(static_cast<double>(shape.size()));
  meta->insert(meta->end(), shape.begin(), shape.end());
}

// Numeric values under kPoolMinBytes share one ArrayBuffer (buffers[0] of the tape): a body of
// many small instances would otherwise make one ArrayBuffer per value (~1 us each). Larger ones
// get their own pooled buffer, recycled when V8 collects it. Both passes over the values ask.
bool InSharedBuffer(const ParsedValue& v) { return v.number_count * sizeof(double) < kPoolMinBytes; }

Napi::ArrayBuffer CopyToArrayBuffer(Napi::Env env, const void* data, size_t bytes) {
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0 && !env.IsExceptionPending()) std::memcpy(ab.Data(), data, bytes);
  return ab;
}

// parseInstances(body: Uint8Array): [meta: ArrayBuffer, blob: string, buffers: ArrayBuffer[]]
// A compact "tape" that native/index.ts turns into the ParsedRequest objects: building them in
// JS is several times cheaper than one Node-API call per property. Layout (all doubles):
//   single, instance count, then per instance: input count, then per input:
//     name length, kind (0 numbers, 1 bools, 2 strings, 3 b64), then by kind:
//     0: rank, dims..., integers, at     data: at < 0: next buffer (float64); at >= 0: the
//                                        value's count doubles from element `at` of the
//                                        shared buffer (buffers[0], small values only)
//     1: rank, dims...                   data: next buffer (uint8)
//     2: rank, dims..., count, lengths   data: next `count` strings of the blob
//     3: b64 length, has type, type length, has shape, rank, dims...
// Strings (names, string data, b64 and type texts) follow each other in `blob`; lengths are
// in UTF-16 units, so JS slices it directly.
Napi::Value ParseInstances(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return Throw(env, "parseInstances: the body must be a Uint8Array", -1, true);
  }
  Napi::Uint8Array body = info[0].As<Napi::Uint8Array>();
  // Kept per thread between calls: its number arena's pages stay mapped (page faults are
  // a large part of parsing a big body otherwise). Released when it grew past 64 MiB.
  thread_local ParsedRequest req;
  struct Trim {
    ~Trim() {
      req.instances.clear();
      if (req.numbers.capacity() > (size_t{64} << 20) / sizeof(double)) std::vector<double>().swap(req.numbers);
    }
  } trim;
  ParseError error;
  if (!ParseRequestBody(body.Data(), body.ElementLength(), &req, &error)) {
    return Throw(env, error.message, static_cast<double>(error.position));
  }
  std::vector<double> meta;
  std::string blob;
  meta.push_back(req.single ? 1 : 0);
  meta.push_back(static_cast<double>(req.instances.size()));
  size_t buffer_count = 1;  // buffers[0] is the shared one (InSharedBuffer)
  size_t shared_count = 0;
  for (const ParsedInstance& inst : req.instances) {
    meta.push_back(static_cast<double>(inst.inputs.size()));
    for (const auto& input : inst.inputs) {
      const ParsedValue& v = input.second;
      PutString(input.first, &blob, &meta);
      meta.push_back(static_cast<double>(v.kind));
      switch (v.kind) {
        case ParsedValue::Kind::kNumbers:
          PutShape(v.shape, &meta);
          meta.push_back(v.integers ? 1 : 0);
          if (InSharedBuffer(v)) {
            meta.push_back(static_cast<double>(shared_count));
            shared_count += v.number_count;
          } else {
            meta.push_back(-1);
            ++buffer_count;
          }
          break;
        case ParsedValue::Kind::kBools:
          PutShape(v.shape, &meta);
          ++buffer_count;
          break;
        case ParsedValue::Kind::kStrings:
          PutShape(v.shape, &meta);
          meta.push_back(static_cast<double>(v.strings.size()));
          for (const std::string& str : v.strings) PutString(str, &blob, &meta);
          break;
        case ParsedValue::Kind::kB64:
          PutString(v.b64, &blob, &meta);
          meta.push_back(v.has_type ? 1 : 0);
          if (v.has_type) {
            PutString(v.type, &blob, &meta);
          } else {
            meta.push_back(0);
          }
          meta.push_back(v.has_shape ? 1 : 0);
          PutShape(v.b64_shape, &meta);
          break;
      }
    }
  }
  Napi::Array buffers = Napi::Array::New(env, buffer_count);
  Napi::ArrayBuffer shared = Napi::ArrayBuffer::New(env, shared_count * sizeof(double));
  if (env.IsExceptionPending()) return env.Undefined();
  buffers.Set(uint32_t{0}, shared);
  double* shared_at = static_cast<double*>(shared.Data());
  uint32_t b = 1;
  for (const ParsedInstance& inst : req.instances) {
    for (const auto& input : inst.inputs) {
      const ParsedValue& v = input.second;
      if (v.kind == ParsedValue::Kind::kNumbers) {
        const double* numbers = req.numbers.data() + v.number_begin;
        if (InSharedBuffer(v)) {
          std::memcpy(shared_at, numbers, v.number_count * sizeof(double));
          shared_at += v.number_count;
        } else {
          buffers.Set(b++, PooledArrayBufferCopy(env, numbers, v.number_count * sizeof(double)));
        }
      } else if (v.kind == ParsedValue::Kind::kBools) {
        buffers.Set(b++, CopyToArrayBuffer(env, v.bools.data(), v.bools.size()));
      }
      if (env.IsExceptionPending()) return env.Undefined();
    }
  }
  napi_value blob_value;
  if (napi_create_string_utf8(env, blob.data(), blob.size(), &blob_value) != napi_ok) {
    if (!env.IsExceptionPending()) Throw(env, "parseInstances: the request's strings are too long");
    return env.Undefined();
  }
  Napi::Array tape = Napi::Array::New(env, 3);
  tape.Set(uint32_t{0}, CopyToArrayBuffer(env, meta.data(), meta.size() * sizeof(double)));
  tape.Set(uint32_t{1}, Napi::Value(env, blob_value));
  tape.Set(uint32_t{2}, buffers);
  return tape;
}

bool ElementTypeOf(napi_typedarray_type t, bool as_bool, ElementType* out) {
  switch (t) {
    case napi_float32_array: *out = ElementType::kFloat32; return !as_bool;
    case napi_float64_array: *out = ElementType::kFloat64; return !as_bool;
    case napi_int8_array: *out = ElementType::kInt8; return !as_bool;
    case napi_uint8_array: *out = as_bool ? ElementType::kBool : ElementType::kUint8; return true;
    case napi_uint8_clamped_array: *out = ElementType::kUint8; return !as_bool;
    case napi_int16_array: *out = ElementType::kInt16; return !as_bool;
    case napi_uint16_array: *out = ElementType::kUint16; return !as_bool;
    case napi_int32_array: *out = ElementType::kInt32; return !as_bool;
    case napi_uint32_array: *out = ElementType::kUint32; return !as_bool;
    case napi_bigint64_array: *out = ElementType::kInt64; return !as_bool;
    case napi_biguint64_array: *out = ElementType::kUint64; return !as_bool;
    default: return false;
  }
}

// The (typed array, shape, asBool) arguments both writers take, checked.
struct WriteArgs {
  ElementType type;
  const uint8_t* bytes;
  double shape[kMaxJsonRank];
  uint32_t rank;
};

bool ReadWriteArgs(const Napi::CallbackInfo& info, const char* name, WriteArgs* args) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsArray()) {
    Throw(env, std::string(name) + ": expected (typed array, shape)", -1, true);
    return false;
  }
  Napi::TypedArray data = info[0].As<Napi::TypedArray>();
  const bool as_bool = info.Length() > 2 && info[2].ToBoolean().Value();
  if (!ElementTypeOf(data.TypedArrayType(), as_bool, &args->type)) {
    Throw(env, std::string(name) + ": unsupported typed array", -1, true);
    return false;
  }
  Napi::Array shape_array = info[1].As<Napi::Array>();
  args->rank = shape_array.Length();
  if (args->rank > kMaxJsonRank) {
    Throw(env, "shape has more than 64 dimensions");
    return false;
  }
  for (uint32_t k = 0; k < args->rank; ++k) {
    Napi::Value d = shape_array.Get(k);
    if (env.IsExceptionPending()) return false;
    args->shape[k] = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
  }
  const std::string problem = CheckJsonShape(args->shape, args->rank, data.ElementLength());
  if (!problem.empty()) {
    Throw(env, problem);
    return false;
  }
  args->bytes = static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  return true;
}

// writeJson(data: TypedArray, shape: number[], asBool?: boolean): string
Napi::Value WriteJsonBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WriteArgs args;
  if (!ReadWriteArgs(info, "writeJson", &args)) return env.Undefined();
  // Kept per thread between calls (see ParseInstances); released past 64 MiB.
  thread_local JsonBuffer out;
  struct Trim {
    ~Trim() {
      if (out.capacity() > (size_t{64} << 20)) out.Release();
    }
  } trim;
  if (!WriteJson(args.type, args.bytes, args.shape, args.rank, &out)) return Throw(env, "JSON output too large");
  napi_value s;
  if (napi_create_string_latin1(env, out.data(), out.size(), &s) != napi_ok) {
    return Throw(env, "JSON output too large");
  }
  return Napi::Value(env, s);
}

// writeJsonInto(data, shape, asBool, target: Uint8Array, offset: number): number
// The same text straight into target[offset..]; returns the end offset, or -1 when the text
// did not fit (native/checks.ts jsonTextBound says how much room always suffices).
Napi::Value WriteJsonIntoBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WriteArgs args;
  if (!ReadWriteArgs(info, "writeJsonInto", &args)) return env.Undefined();
  if (info.Length() < 5 || !info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !info[4].IsNumber()) {
    return Throw(env, "writeJsonInto: expected (typed array, shape, asBool, target Uint8Array, offset)", -1, true);
  }
  Napi::Uint8Array target = info[3].As<Napi::Uint8Array>();
  const double offset = info[4].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0 && offset <= static_cast<double>(target.ElementLength())) || offset != static_cast<double>(static_cast<size_t>(offset))) {
    return Throw(env, "writeJsonInto: offset out of range", -1, true);
  }
  const size_t start = static_cast<size_t>(offset);
  char* window = reinterpret_cast<char*>(target.Data()) + start;
  JsonBuffer out(window, target.ElementLength() - start);
  if (!WriteJson(args.type, args.bytes, args.shape, args.rank, &out)) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, static_cast<double>(start + out.size()));
}

}  // namespace

void InitJsonCodec(Napi::Env env, Napi::Object exports) {
  exports.Set("parseInstances", Napi::Function::New(env, ParseInstances, "parseInstances"));
  exports.Set("writeJson", Napi::Function::New(env, WriteJsonBinding, "writeJson"));
  exports.Set("writeJsonInto", Napi::Function::New(env, WriteJsonIntoBinding, "writeJsonInto"));
}

}  // namespace actorserve
