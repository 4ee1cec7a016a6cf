// Map operations on a descriptor. Sizes come from TypeScript, which read them from the kernel
// (mapInfo) and checked every key and value before calling here.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "common.h"

namespace bae {

static Napi::Object MapInfoObject(Napi::Env env, const struct bpf_map_info& mi) {
  Napi::Object o = Napi::Object::New(env);
  const char* typeName = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(mi.type));
  o.Set("name", mi.name);
  o.Set("type", typeName ? Napi::String::New(env, typeName) : Napi::String::New(env, "type_" + std::to_string(mi.type)));
  o.Set("typeId", Napi::Number::New(env, mi.type));
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  return o;
}

// mapInfo(fd) -> { name, type, typeId, id, keySize, valueSize, maxEntries, flags }
static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  struct bpf_map_info mi = {};
  __u32 len = sizeof mi;
  if (bpf_obj_get_info_by_fd(ArgInt(info, 0), &mi, &len)) ThrowErrno(info.Env(), "bpf_map_get_info_by_fd", errno);
  return MapInfoObject(info.Env(), mi);
}

// mapLookup(fd, key, valueLen) -> Buffer | undefined
static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  auto key = ArgBuffer(info, 1);
  auto value = Napi::Buffer<uint8_t>::New(env, ArgUint(info, 2));
  if (bpf_map_lookup_elem(fd, key.Data(), value.Data())) {
    if (errno == ENOENT) return env.Undefined();
    ThrowErrno(env, "bpf_map_lookup_elem", errno);
  }
  return value;
}

// mapUpdate(fd, key, value, flags)
static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  if (bpf_map_update_elem(ArgInt(info, 0), ArgBuffer(info, 1).Data(), ArgBuffer(info, 2).Data(), ArgUint(info, 3)))
    ThrowErrno(info.Env(), "bpf_map_update_elem", errno);
  return info.Env().Undefined();
}

// mapDelete(fd, key) -> boolean (false when the key was absent)
static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  if (bpf_map_delete_elem(ArgInt(info, 0), ArgBuffer(info, 1).Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "bpf_map_delete_elem", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapNextKey(fd, key | null, keySize) -> Buffer | undefined (undefined after the last key)
static Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  const void* key = ArgIsNullish(info, 1) ? nullptr : ArgBuffer(info, 1).Data();
  auto next = Napi::Buffer<uint8_t>::New(env, ArgUint(info, 2));
  if (bpf_map_get_next_key(fd, key, next.Data())) {
    if (errno == ENOENT) return env.Undefined();
    ThrowErrno(env, "bpf_map_get_next_key", errno);
  }
  return next;
}

// mapLookupBatch(fd, inBatch | null, keySize, valueLen, count, andDelete)
//   -> { count, keys, values, outBatch, done }
// The batch token is opaque: a bucket index for hash maps, a key for arrays; 8 bytes or the key
// size, whichever is larger, holds either.
static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  uint32_t keySize = ArgUint(info, 2), valueLen = ArgUint(info, 3), count = ArgUint(info, 4);
  bool andDelete = info[5].ToBoolean();
  size_t tokenSize = keySize > 8 ? keySize : 8;
  auto outBatch = Napi::Buffer<uint8_t>::New(env, tokenSize);
  auto keys = Napi::Buffer<uint8_t>::New(env, size_t(keySize) * count);
  auto values = Napi::Buffer<uint8_t>::New(env, size_t(valueLen) * count);
  void* inBatch = ArgIsNullish(info, 1) ? nullptr : ArgBuffer(info, 1).Data();
  __u32 n = count;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int ret = andDelete ? bpf_map_lookup_and_delete_batch(fd, inBatch, outBatch.Data(), keys.Data(), values.Data(), &n, &opts)
                      : bpf_map_lookup_batch(fd, inBatch, outBatch.Data(), keys.Data(), values.Data(), &n, &opts);
  bool done = false;
  if (ret) {
    int err = LibbpfErr(ret);
    if (err != ENOENT) ThrowErrno(env, andDelete ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch", err);
    done = true;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, n));
  out.Set("keys", keys);
  out.Set("values", values);
  out.Set("outBatch", outBatch);
  out.Set("done", Napi::Boolean::New(env, done));
  return out;
}

// mapUpdateBatch(fd, keys, values, count, flags) -> number updated (throws with `count` done)
static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  __u32 n = ArgUint(info, 3);
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = ArgUint(info, 4));
  int ret = bpf_map_update_batch(ArgInt(info, 0), ArgBuffer(info, 1).Data(), ArgBuffer(info, 2).Data(), &n, &opts);
  if (ret) {
    Napi::Error e = ErrnoError(env, "bpf_map_update_batch", LibbpfErr(ret));
    e.Set("count", Napi::Number::New(env, n));
    throw e;
  }
  return Napi::Number::New(env, n);
}

// mapDeleteBatch(fd, keys, count) -> number deleted (throws with `count` done)
static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  __u32 n = ArgUint(info, 2);
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int ret = bpf_map_delete_batch(ArgInt(info, 0), ArgBuffer(info, 1).Data(), &n, &opts);
  if (ret) {
    Napi::Error e = ErrnoError(env, "bpf_map_delete_batch", LibbpfErr(ret));
    e.Set("count", Napi::Number::New(env, n));
    throw e;
  }
  return Napi::Number::New(env, n);
}

// objPin(fd, path)
static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 1);
  int ret = bpf_obj_pin(ArgInt(info, 0), path.c_str());
  if (ret) ThrowErrno(info.Env(), "bpf_obj_pin(" + path + ")", LibbpfErr(ret));
  return info.Env().Undefined();
}

// objGet(path) -> Handle
static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "bpf_obj_get(" + path + ")", LibbpfErr(fd));
  return Handle::New(info.Env(), fd);
}

// mapGetById(id) -> Handle
static Napi::Value MapGetById(const Napi::CallbackInfo& info) {
  int fd = bpf_map_get_fd_by_id(ArgUint(info, 0));
  if (fd < 0) ThrowErrno(info.Env(), "bpf_map_get_fd_by_id", LibbpfErr(fd));
  return Handle::New(info.Env(), fd);
}

// An RCU grace period, from user space. BPF_MAP_UPDATE_ELEM on a map-in-map returns only after
// synchronize_rcu() (kernel/bpf/syscall.c, maybe_wait_bpf_programs: so that user space knows no
// non-sleepable program still uses the old value; the kernel selftests rely on it too). Every
// XDP run is a non-sleepable program inside an RCU read-side section, so once this resolves,
// every run that started before the call has finished. Two throwaway maps per call; the wait
// (a few jiffies) runs on the libuv pool, not the event loop.
class GraceWorker : public Napi::AsyncWorker {
 public:
  explicit GraceWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "bae.rcuGracePeriod"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bae_grace_in", 4, 4, 1, nullptr);
    if (inner < 0) return Fail("bpf_map_create(bae_grace_in)", -inner);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = static_cast<__u32>(inner));
    int outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "bae_grace", 4, 4, 1, &opts);
    if (outer < 0) {
      close(inner);
      return Fail("bpf_map_create(bae_grace)", -outer);
    }
    __u32 key = 0;
    __u32 value = static_cast<__u32>(inner);
    if (bpf_map_update_elem(outer, &key, &value, BPF_ANY)) Fail("bpf_map_update_elem(bae_grace)", errno);
    close(outer);
    close(inner);
  }
  void OnOK() override {
    if (err_) deferred_.Reject(ErrnoError(Env(), op_, err_).Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void Fail(const char* op, int err) {
    op_ = op;
    err_ = err;
  }
  Napi::Promise::Deferred deferred_;
  std::string op_;
  int err_ = 0;
};

// rcuGracePeriod() -> Promise<void>
static Napi::Value RcuGracePeriod(const Napi::CallbackInfo& info) {
  auto* worker = new GraceWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

void InitMap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("mapGetById", Napi::Function::New(env, MapGetById));
  exports.Set("rcuGracePeriod", Napi::Function::New(env, RcuGracePeriod));
}

}  // namespace bae
