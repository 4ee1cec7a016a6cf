// The XDP transmitter's system calls (live_tx.h says what it is for), and the thread's step that
// hands it a batch (Line::SendLive).
#include "live_tx.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "../common.h"
#include "line.h"

namespace bae::delay {
namespace {

// The frame each run starts from: the program replaces its length and bytes with the slot's, so
// any small frame will do; the kernel wants one.
constexpr size_t kLiveTemplateBytes = 64;

struct bpf_map_info MapInfo(Napi::Env env, int fd, const char* what) {
  struct bpf_map_info mi = {};
  __u32 len = sizeof mi;
  if (bpf_obj_get_info_by_fd(fd, &mi, &len)) ThrowErrno(env, std::string("bpf_map_get_info_by_fd(") + what + ")", errno);
  return mi;
}

}  // namespace

void LiveTx::Open(Napi::Env env, int progFd, int slotsFd, int ctlFd, uint32_t batchMax) {
  try {
    struct bpf_map_info slots = MapInfo(env, slotsFd, "dl_tx_slots"), ctl = MapInfo(env, ctlFd, "dl_tx_ctl");
    if (slots.type != BPF_MAP_TYPE_ARRAY || !(slots.map_flags & BPF_F_MMAPABLE) ||
        slots.value_size != sizeof(struct dl_tx_slot) || slots.max_entries == 0 || ctl.type != BPF_MAP_TYPE_ARRAY ||
        !(ctl.map_flags & BPF_F_MMAPABLE) || ctl.value_size != sizeof(struct dl_tx_ctl) || ctl.max_entries != 1)
      throw Napi::TypeError::New(env, "DelayLine: the transmit maps do not have the layout of bpf/bae.h (rebuild the BPF object?)");
    progFd_ = fcntl(progFd, F_DUPFD_CLOEXEC, 3);
    if (progFd_ < 0) ThrowErrno(env, "dup(transmit program)", errno);
    const long page = sysconf(_SC_PAGESIZE);
    auto pages = [&](size_t n) { return (n + page - 1) / page * page; };
    slotsLen_ = pages(static_cast<size_t>(slots.max_entries) * sizeof(struct dl_tx_slot));
    void* slotsMem = mmap(nullptr, slotsLen_, PROT_READ | PROT_WRITE, MAP_SHARED, slotsFd, 0);
    if (slotsMem == MAP_FAILED) ThrowErrno(env, "mmap(dl_tx_slots)", errno);
    slots_ = static_cast<dl_tx_slot*>(slotsMem);
    ctlLen_ = pages(sizeof(struct dl_tx_ctl));
    void* ctlMem = mmap(nullptr, ctlLen_, PROT_READ | PROT_WRITE, MAP_SHARED, ctlFd, 0);
    if (ctlMem == MAP_FAILED) ThrowErrno(env, "mmap(dl_tx_ctl)", errno);
    ctl_ = static_cast<dl_tx_ctl*>(ctlMem);
    capacity_ = std::min<uint32_t>(slots.max_entries, batchMax);
    ifFd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ifFd_ < 0) ThrowErrno(env, "socket(AF_UNIX) for link state", errno);
    on_ = true;
  } catch (...) {
    Release();
    throw;
  }
}

void LiveTx::Release() {
  if (slots_ != nullptr) munmap(slots_, slotsLen_);
  slots_ = nullptr;
  if (ctl_ != nullptr) munmap(ctl_, ctlLen_);
  ctl_ = nullptr;
  on_ = false;
  if (progFd_ >= 0) close(progFd_);
  progFd_ = -1;
  if (ifFd_ >= 0) close(ifFd_);
  ifFd_ = -1;
}

void LiveTx::ReadLink(Port& port, int64_t now) {
  struct ifreq ifr = {};
  std::memcpy(ifr.ifr_name, port.ifname.c_str(), std::min(port.ifname.size(), sizeof ifr.ifr_name - 1));
  port.up = ioctl(ifFd_, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
  port.upCheckedAt = now;
}

LiveTx::Outcome LiveTx::Send(uint32_t count) {
  ctl_->next = 0;
  ctl_->count = count;
  const uint64_t failedBefore = __atomic_load_n(&ctl_->failed, __ATOMIC_RELAXED);
  struct xdp_md md = {};
  uint8_t templ[kLiveTemplateBytes] = {};
  md.ingress_ifindex = DL_TX_INGRESS_IFINDEX;
  md.data_end = sizeof templ;  // the kernel insists on data_end == data_size_in
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = templ, .data_size_in = sizeof templ, .ctx_in = &md,
              .ctx_size_in = sizeof md, .repeat = static_cast<int>(count), .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
  int err = bpf_prog_test_run_opts(progFd_, &opts) ? errno : 0;
  // Disarmed between calls: other runs of the program with the loopback device as ingress
  // (golden-packet tests) must not take slots.
  ctl_->count = 0;
  if (err) {
    // Transient refusals are retried with the next batch; any other will not go away.
    const bool turnedOff = err != EINTR && err != EAGAIN && err != ENOMEM;
    if (turnedOff) on_ = false;
    return {err, 0, turnedOff};
  }
  uint64_t failed = __atomic_load_n(&ctl_->failed, __ATOMIC_RELAXED) - failedBefore;
  return {0, std::min<uint64_t>(failed, count), false};
}

// One call over the slots written for liveIdx_. Thread.
void Line::SendLive(int64_t now) {
  const uint32_t k = static_cast<uint32_t>(liveIdx_.size());
  const LiveTx::Outcome out = live_.Send(k);
  Bump(counters_.liveCalls);
  if (out.err) {
    // The kernel refused the call (nothing was sent): these frames are lost, and a refusal that
    // will not go away turns the live path off; the sockets carry on alone.
    Bump(counters_.txErrors);
    Bump(counters_.txDropped, k);
    counters_.liveErrno.store(out.err, std::memory_order_relaxed);
    if (out.turnedOff) counters_.live.store(false, std::memory_order_relaxed);
  } else {
    Bump(counters_.txDropped, out.failed);
    Bump(counters_.liveTransmitted, k - out.failed);
    for (uint32_t idx : liveIdx_) Sent(meta_[idx], now);
    // The program could not make `failed` of them (it cannot, for frames checked as these are):
    // which ones is not known, so only the totals are corrected.
    if (out.failed)
      counters_.transmitted.store(counters_.transmitted.load(std::memory_order_relaxed) - out.failed,
                                  std::memory_order_relaxed);
  }
  for (uint32_t idx : liveIdx_) freeFrames_.push_back(idx);
  liveIdx_.clear();
}

}  // namespace bae::delay
