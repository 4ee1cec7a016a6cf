// Shared pieces of the addon: errno errors, owned file descriptors, and the close-on-teardown
// registry that lets a destructor and the environment cleanup hook share one Close().
#pragma once
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace bae {

// A JS Error whose `errno` (positive) and `op` the TypeScript layer turns into a BpfError
// (src/datapath/errors.ts) with the errno name as `code` and the object name in the message.
Napi::Error ErrnoError(Napi::Env env, const std::string& op, int err);
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& op, int err);
// libbpf returns -errno; plain syscalls return -1 and set errno.
inline int LibbpfErr(int ret) { return ret < 0 ? -ret : (errno ? errno : EINVAL); }

// Everything that owns a kernel resource derives from this. Close() must be idempotent: it is
// called by JS close(), by the destructor, and by the environment cleanup hook.
class Closable {
 public:
  explicit Closable(napi_env env);
  virtual ~Closable();
  virtual void Close() = 0;
  Closable(const Closable&) = delete;
  Closable& operator=(const Closable&) = delete;

 protected:
  void Untrack();

 private:
  napi_env env_;
};

void CloseAllFor(napi_env env);

// An owned file descriptor (a map, program or link). JS sees `fd` (-1 once closed) and close().
class Handle : public Napi::ObjectWrap<Handle>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, int fd);  // takes ownership of fd
  explicit Handle(const Napi::CallbackInfo& info);
  ~Handle() override;
  void Close() override;
  int fd() const { return fd_; }

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value JsClose(const Napi::CallbackInfo& info);
  int fd_ = -1;
};

struct AddonData {
  Napi::FunctionReference handleCtor;
};

// Argument helpers: arguments are checked in TypeScript, these only guard against misuse.
int32_t ArgInt(const Napi::CallbackInfo& info, size_t i);
uint32_t ArgUint(const Napi::CallbackInfo& info, size_t i);
std::string ArgString(const Napi::CallbackInfo& info, size_t i);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i);
bool ArgIsNullish(const Napi::CallbackInfo& info, size_t i);

void InitObject(Napi::Env env, Napi::Object exports);
void InitMap(Napi::Env env, Napi::Object exports);
void InitProgram(Napi::Env env, Napi::Object exports);
void InitLink(Napi::Env env, Napi::Object exports);
void InitRingBuffer(Napi::Env env, Napi::Object exports);
void InitFeatures(Napi::Env env, Napi::Object exports);

}  // namespace bae
