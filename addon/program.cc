// Program operations: info, BPF_PROG_TEST_RUN (synchronously, or in an AsyncWorker for long
// repeat counts so the event loop keeps running).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace bae {

static Napi::Object ProgInfoObject(Napi::Env env, const struct bpf_prog_info& pi) {
  Napi::Object o = Napi::Object::New(env);
  const char* typeName = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(pi.type));
  o.Set("name", pi.name);
  o.Set("type", typeName ? Napi::String::New(env, typeName) : Napi::String::New(env, "type_" + std::to_string(pi.type)));
  o.Set("typeId", Napi::Number::New(env, pi.type));
  o.Set("id", Napi::Number::New(env, pi.id));
  o.Set("tag", Napi::Buffer<uint8_t>::Copy(env, pi.tag, sizeof pi.tag));
  // Instructions the verifier processed to accept the program (kernel 5.16+; 0 before).
  o.Set("verifiedInsns", Napi::Number::New(env, pi.verified_insns));
  return o;
}

// progInfo(fd) -> { name, type, typeId, id, tag, verifiedInsns }
static Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  struct bpf_prog_info pi = {};
  __u32 len = sizeof pi;
  if (bpf_obj_get_info_by_fd(ArgInt(info, 0), &pi, &len)) ThrowErrno(info.Env(), "bpf_prog_get_info_by_fd", errno);
  return ProgInfoObject(info.Env(), pi);
}

// progInfoById(id) -> { ... } | undefined when no such program
static Napi::Value ProgInfoById(const Napi::CallbackInfo& info) {
  int fd = bpf_prog_get_fd_by_id(ArgUint(info, 0));
  if (fd < 0) {
    if (errno == ENOENT) return info.Env().Undefined();
    ThrowErrno(info.Env(), "bpf_prog_get_fd_by_id", errno);
  }
  struct bpf_prog_info pi = {};
  __u32 len = sizeof pi;
  int ret = bpf_obj_get_info_by_fd(fd, &pi, &len);
  int err = errno;
  close(fd);
  if (ret) ThrowErrno(info.Env(), "bpf_prog_get_info_by_fd", err);
  return ProgInfoObject(info.Env(), pi);
}

// One test run, described by plain data so that it can run on a worker thread.
struct TestRun {
  int fd = -1;
  std::vector<uint8_t> data;
  std::vector<uint8_t> out;
  bool hasCtx = false;
  struct xdp_md ctx = {};
  uint32_t repeat = 1;
  uint32_t flags = 0;
  // results
  int err = 0;
  uint32_t retval = 0;
  uint32_t duration = 0;
  uint32_t outSize = 0;

  // progTestRun(fd, data, repeat, ctxIn: [ingressIfindex, rxQueueIndex] | null, dataSizeOut, flags)
  void Parse(const Napi::CallbackInfo& info) {
    fd = ArgInt(info, 0);
    auto in = ArgBuffer(info, 1);
    data.assign(in.Data(), in.Data() + in.Length());
    repeat = ArgUint(info, 2);
    if (!ArgIsNullish(info, 3)) {
      Napi::Array c = info[3].As<Napi::Array>();
      hasCtx = true;
      ctx.ingress_ifindex = c.Get(0u).As<Napi::Number>().Uint32Value();
      ctx.rx_queue_index = c.Get(1u).As<Napi::Number>().Uint32Value();
    }
    flags = ArgUint(info, 5);
    // The kernel wants the context to describe the packet it is handed: data 0, data_end = size.
    if (hasCtx) ctx.data_end = static_cast<__u32>(data.size());
    // Live frames go out to the device; the kernel refuses an output buffer for them.
    if (!(flags & BPF_F_TEST_XDP_LIVE_FRAMES)) out.resize(ArgUint(info, 4));
  }

  void Run() {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data(), .data_out = out.empty() ? nullptr : out.data(),
                .data_size_in = static_cast<__u32>(data.size()), .data_size_out = static_cast<__u32>(out.size()),
                .ctx_in = hasCtx ? &ctx : nullptr, .ctx_size_in = hasCtx ? static_cast<__u32>(sizeof ctx) : 0u,
                .repeat = static_cast<int>(repeat), .flags = flags);
    int ret = bpf_prog_test_run_opts(fd, &opts);
    if (ret) {
      err = LibbpfErr(ret);
      return;
    }
    retval = opts.retval;
    duration = opts.duration;
    outSize = opts.data_size_out;
  }

  Napi::Value Result(Napi::Env env) {
    if (err) throw ErrnoError(env, "bpf_prog_test_run_opts", err);
    Napi::Object o = Napi::Object::New(env);
    o.Set("verdict", Napi::Number::New(env, retval));
    size_t n = outSize < out.size() ? outSize : out.size();
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), n));
    o.Set("durationNs", Napi::Number::New(env, duration));
    return o;
  }
};

static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  TestRun run;
  run.Parse(info);
  run.Run();
  return run.Result(info.Env());
}

class TestRunWorker : public Napi::AsyncWorker {
 public:
  TestRunWorker(Napi::Env env, TestRun&& run)
      : Napi::AsyncWorker(env, "bae.progTestRun"), run_(std::move(run)), deferred_(Napi::Promise::Deferred::New(env)) {}
  ~TestRunWorker() override {
    if (run_.fd >= 0) close(run_.fd);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { run_.Run(); }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(run_.Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  TestRun run_;
  Napi::Promise::Deferred deferred_;
};

// progTestRunAsync(...same as progTestRun) -> Promise. The worker owns a duplicate of the
// descriptor so that closing the program meanwhile cannot pull it away from the run.
static Napi::Value ProgTestRunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TestRun run;
  run.Parse(info);
  run.fd = fcntl(run.fd, F_DUPFD_CLOEXEC, 3);
  if (run.fd < 0) ThrowErrno(env, "dup(program)", errno);
  auto* worker = new TestRunWorker(env, std::move(run));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// progGetById(id) -> Handle
static Napi::Value ProgGetById(const Napi::CallbackInfo& info) {
  int fd = bpf_prog_get_fd_by_id(ArgUint(info, 0));
  if (fd < 0) ThrowErrno(info.Env(), "bpf_prog_get_fd_by_id", errno);
  return Handle::New(info.Env(), fd);
}

void InitProgram(Napi::Env env, Napi::Object exports) {
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("progInfoById", Napi::Function::New(env, ProgInfoById));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun));
  exports.Set("progTestRunAsync", Napi::Function::New(env, ProgTestRunAsync));
  exports.Set("progGetById", Napi::Function::New(env, ProgGetById));
}

}  // namespace bae
