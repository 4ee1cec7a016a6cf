// Module entry of the bae native addon: registers every wrapper class and the cleanup hook that
// closes whatever JS still holds when the environment goes away.
#include <bpf/libbpf.h>
#include <napi.h>

#include "common.h"
#include "delay_line.h"

static Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

static void CleanupHook(void* arg) { bae::CloseAllFor(static_cast<napi_env>(arg)); }

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new bae::AddonData();
  Napi::Function handle = bae::Handle::Define(env);
  data->handleCtor = Napi::Persistent(handle);
  env.SetInstanceData<bae::AddonData>(data);
  napi_add_env_cleanup_hook(env, CleanupHook, static_cast<napi_env>(env));

  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  exports.Set("Handle", handle);
  bae::InitObject(env, exports);
  bae::InitMap(env, exports);
  bae::InitProgram(env, exports);
  bae::InitLink(env, exports);
  bae::InitRingBuffer(env, exports);
  bae::InitFeatures(env, exports);
  bae::InitDelayLine(env, exports);
  return exports;
}

NODE_API_MODULE(bae, Init)
