#include "common.h"

#include <unistd.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace bae {

Napi::Error ErrnoError(Napi::Env env, const std::string& op, int err) {
  if (err < 0) err = -err;
  Napi::Error e = Napi::Error::New(env, op + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("op", Napi::String::New(env, op));
  return e;
}

void ThrowErrno(Napi::Env env, const std::string& op, int err) { throw ErrnoError(env, op, err); }

// Live resources per environment. A worker thread has its own env, hence the mutex.
static std::mutex registryMutex;
static std::unordered_map<Closable*, napi_env>& Registry() {
  static auto* registry = new std::unordered_map<Closable*, napi_env>();
  return *registry;
}

Closable::Closable(napi_env env) : env_(env) {
  std::lock_guard<std::mutex> lock(registryMutex);
  Registry()[this] = env;
}

Closable::~Closable() { Untrack(); }

void Closable::Untrack() {
  std::lock_guard<std::mutex> lock(registryMutex);
  Registry().erase(this);
}

void CloseAllFor(napi_env env) {
  std::vector<Closable*> live;
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    for (auto& [obj, objEnv] : Registry())
      if (objEnv == env) live.push_back(obj);
  }
  for (Closable* obj : live) obj->Close();
}

// A private token keeps JS from wrapping arbitrary numbers (such as 0) as owned descriptors.
static int handleToken;

Napi::Function Handle::Define(Napi::Env env) {
  return DefineClass(env, "Handle",
                     {InstanceAccessor<&Handle::GetFd>("fd"), InstanceMethod<&Handle::JsClose>("close")});
}

Napi::Object Handle::New(Napi::Env env, int fd) {
  auto* data = env.GetInstanceData<AddonData>();
  try {
    return data->handleCtor.New({Napi::External<int>::New(env, &handleToken), Napi::Number::New(env, fd)});
  } catch (...) {
    close(fd);
    throw;
  }
}

Handle::Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info), Closable(info.Env()) {
  if (info.Length() != 2 || !info[0].IsExternal() || info[0].As<Napi::External<int>>().Data() != &handleToken)
    throw Napi::TypeError::New(info.Env(), "Handle cannot be constructed from JavaScript");
  fd_ = info[1].As<Napi::Number>().Int32Value();
}

Handle::~Handle() { Close(); }

void Handle::Close() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

Napi::Value Handle::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value Handle::JsClose(const Napi::CallbackInfo& info) {
  Close();
  return info.Env().Undefined();
}

int32_t ArgInt(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t ArgUint(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

bool ArgIsNullish(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

}  // namespace bae
