// Module entry of the bae native addon: registers every wrapper class.
#include <napi.h>
#include <bpf/libbpf.h>

static Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  return exports;
}

NODE_API_MODULE(bae, Init)
