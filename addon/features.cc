// Feature probes for src/datapath/features.ts (`bae doctor`, the agent's degradation notes).
// Each asks the kernel directly with the smallest object that shows the feature, and closes
// everything it opened before it returns: a probe leaves nothing behind.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
// Linux 6.17+ (addon/delay_line/xsk.cc sets it when the kernel knows it).
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif

namespace bae {

// probeMapType(typeId) -> { result: 1 supported | 0 not | -errno, name: libbpf's name of typeId }
static Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto type = static_cast<enum bpf_map_type>(ArgUint(info, 0));
  const char* name = libbpf_bpf_map_type_str(type);
  Napi::Object o = Napi::Object::New(env);
  o.Set("result", Napi::Number::New(env, libbpf_probe_bpf_map_type(type, nullptr)));
  o.Set("name", name ? Napi::Value(Napi::String::New(env, name)) : env.Undefined());
  return o;
}

// probeHelper(progTypeId, helperId) -> 1 usable from that program type | 0 not | -errno
static Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  auto progType = static_cast<enum bpf_prog_type>(ArgUint(info, 0));
  auto helper = static_cast<enum bpf_func_id>(ArgUint(info, 1));
  return Napi::Number::New(info.Env(), libbpf_probe_bpf_helper(progType, helper, nullptr));
}

// probeMapCreate(typeId, keySize, valueSize, maxEntries, flags) -> 0 | errno: whether the kernel
// creates such a map (libbpf's map probe cannot ask about flags such as BPF_F_MMAPABLE).
static Napi::Value ProbeMapCreate(const Napi::CallbackInfo& info) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = ArgUint(info, 4));
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(ArgUint(info, 0)), "bae_probe", ArgUint(info, 1),
                          ArgUint(info, 2), ArgUint(info, 3), &opts);
  if (fd < 0) return Napi::Number::New(info.Env(), LibbpfErr(fd));
  close(fd);
  return Napi::Number::New(info.Env(), 0);
}

// probeXdpLiveFrames() -> 0 | errno: one BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (5.18+)
// of a program that drops every frame, so the frame goes nowhere. Older kernels: EINVAL.
static Napi::Value ProbeXdpLiveFrames(const Napi::CallbackInfo& info) {
  const struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP},  // r0 = XDP_DROP
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                           // return r0
  };
  int prog = bpf_prog_load(BPF_PROG_TYPE_XDP, "bae_probe", "GPL", insns, sizeof insns / sizeof insns[0], nullptr);
  if (prog < 0) return Napi::Number::New(info.Env(), LibbpfErr(prog));
  unsigned char frame[64] = {};  // an Ethernet frame of zeroes; it is dropped
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame, .repeat = 1,
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
  int ret = bpf_prog_test_run_opts(prog, &opts);
  int err = ret ? LibbpfErr(ret) : 0;
  close(prog);
  return Napi::Number::New(info.Env(), err);
}

// probeXsk() -> { socket: 0 | errno, txBudget: errno of setsockopt(XDP_MAX_TX_SKB_BUDGET) }.
// The option is asked of a socket without a TX ring: a kernel that knows it refuses the value
// (EACCES), one that does not refuses the option (ENOPROTOOPT).
static Napi::Value ProbeXsk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  o.Set("socket", Napi::Number::New(env, fd < 0 ? errno : 0));
  int budgetErr = 0;
  if (fd >= 0) {
    unsigned budget = 64;
    if (setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget)) budgetErr = errno;
    close(fd);
  }
  o.Set("txBudget", Napi::Number::New(env, budgetErr));
  return o;
}

// Registers a UMEM, its rings and an RX ring on `fd` and binds it to the queue in copy mode, as
// the delay line does. Returns the step that failed (errno set), or nullptr.
static const char* XskBind(int fd, void* umem, size_t umemLen, uint32_t frameSize, uint32_t ringSize,
                           uint32_t ifindex, uint32_t queue) {
  struct xdp_umem_reg reg = {};
  reg.addr = reinterpret_cast<uint64_t>(umem);
  reg.len = umemLen;
  reg.chunk_size = frameSize;
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg)) return "xsk_umem_reg";
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_FILL_RING, &ringSize, sizeof ringSize) ||
      setsockopt(fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ringSize, sizeof ringSize) ||
      setsockopt(fd, SOL_XDP, XDP_RX_RING, &ringSize, sizeof ringSize))
    return "xsk_rings";
  struct sockaddr_xdp sxdp = {};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_ifindex = ifindex;
  sxdp.sxdp_queue_id = queue;
  sxdp.sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sxdp), sizeof sxdp)) return "xsk_bind";
  return nullptr;
}

// xskBindProbe(ifindex, queueId) -> { errno: 0 | errno, step }: opens an AF_XDP socket on the
// queue with a small UMEM of its own, bound as the delay line binds, then closes it.
static Napi::Value XskBindProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr uint32_t kFrames = 16;  // ring sizes must be powers of two
  constexpr uint32_t kFrameSize = 4096;
  const size_t umemLen = static_cast<size_t>(kFrames) * kFrameSize;
  const char* step = "socket";
  int err = 0;
  int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = errno;
  } else {
    void* umem = mmap(nullptr, umemLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem == MAP_FAILED) {
      step = "mmap(umem)";
      err = errno;
    } else {
      step = XskBind(fd, umem, umemLen, kFrameSize, kFrames, ArgUint(info, 0), ArgUint(info, 1));
      err = step ? errno : 0;
    }
    close(fd);  // before munmap: the kernel holds the UMEM pages until the socket is gone
    if (umem != MAP_FAILED) munmap(umem, umemLen);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("step", Napi::String::New(env, step ? step : "done"));
  return o;
}

void InitFeatures(Napi::Env env, Napi::Object exports) {
  exports.Set("probeMapType", Napi::Function::New(env, ProbeMapType));
  exports.Set("probeHelper", Napi::Function::New(env, ProbeHelper));
  exports.Set("probeMapCreate", Napi::Function::New(env, ProbeMapCreate));
  exports.Set("probeXdpLiveFrames", Napi::Function::New(env, ProbeXdpLiveFrames));
  exports.Set("probeXsk", Napi::Function::New(env, ProbeXsk));
  exports.Set("xskBindProbe", Napi::Function::New(env, XskBindProbe));
}

}  // namespace bae
