// The delay line's AF_XDP plumbing (xsk.h says how the sockets share one UMEM): opening and
// releasing the sockets, rings and UMEM, and the ring operations of each thread step: refill,
// receive, write to a TX ring, kick, recycle completions.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "../common.h"
#include "line.h"

namespace bae::delay {
namespace {

// bind() of a queue whose previous socket was just closed: EBUSY until the kernel's deferred
// release ran; give up after this long.
constexpr int64_t kBindBusyRetryNs = 500'000'000;
constexpr useconds_t kBindBusyPollUs = 1000;
// Copy-mode TX sends at most its budget (32 descriptors, more with XDP_MAX_TX_SKB_BUDGET) per
// sendto(); kicks per step are bounded so a port that does not drain cannot stall the thread.
constexpr int kMaxKicksPerStep = 64;

}  // namespace

void SetRing(void* map, const xdp_ring_offset& off, uint32_t size, bool producer, xsk_ring_prod* prod,
             xsk_ring_cons* cons) {
  auto* base = static_cast<char*>(map);
  auto* p = reinterpret_cast<uint32_t*>(base + off.producer);
  auto* c = reinterpret_cast<uint32_t*>(base + off.consumer);
  auto* flags = reinterpret_cast<uint32_t*>(base + off.flags);
  void* ring = base + off.desc;
  if (producer) {
    *prod = {};
    prod->mask = size - 1;
    prod->size = size;
    prod->producer = p;
    prod->consumer = c;
    prod->ring = ring;
    prod->flags = flags;
    prod->cached_prod = *p;
    prod->cached_cons = *c + size;  // xsk.h keeps cached_cons one ring ahead
  } else {
    *cons = {};
    cons->mask = size - 1;
    cons->size = size;
    cons->producer = p;
    cons->consumer = c;
    cons->ring = ring;
    cons->flags = flags;
    cons->cached_prod = *p;
    cons->cached_cons = *c;
  }
}

// ----- setup and teardown ---------------------------------------------------------------------

void Line::Open(Napi::Env env, int xskMapFd, const std::vector<PortSpec>& ports, const TransmitSpec& transmit) {
  try {
    mapFd_ = fcntl(xskMapFd, F_DUPFD_CLOEXEC, 3);
    if (mapFd_ < 0) ThrowErrno(env, "dup(xskmap)", errno);
    eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventFd_ < 0) ThrowErrno(env, "eventfd", errno);

    umemLen_ = static_cast<size_t>(cfg_.frames) * cfg_.frameSize;
    umem_ = mmap(nullptr, umemLen_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (umem_ == MAP_FAILED) ThrowErrno(env, "mmap(UMEM of " + std::to_string(umemLen_) + " bytes)", errno);
    meta_.assign(cfg_.frames, FrameMeta{0, 0, 0, kNil, 0, 0});
    freeFrames_.reserve(cfg_.frames);
    for (uint32_t i = cfg_.frames; i-- > 0;) freeFrames_.push_back(i);

    ports_.resize(ports.size());
    for (size_t p = 0; p < ports.size(); p++) {
      ports_[p].ifname = ports[p].ifname;
      ports_[p].egress = ports[p].egress;
      ports_[p].ifindex = if_nametoindex(ports_[p].ifname.c_str());
      if (ports_[p].ifindex == 0) ThrowErrno(env, "if_nametoindex(" + ports_[p].ifname + ")", errno);
    }
    sockets_.reserve(ports_.size() * cfg_.classes);
    for (uint32_t p = 0; p < ports_.size(); p++)
      for (uint32_t c = 0; c < cfg_.classes; c++) OpenSocket(env, p, c, ports[p].keys[c]);
    for (Port& port : ports_) RefillFill(port);
    if (transmit.programFd >= 0) {
      live_.Open(env, transmit.programFd, transmit.slotsFd, transmit.controlFd, kTxBatch);
      counters_.live.store(true, std::memory_order_relaxed);
    }
    liveIdx_.reserve(kTxBatch);
    opened_ = true;
  } catch (...) {
    ReleaseKernel();
    CloseJsDescriptors();
    throw;
  }
}

void Line::OpenSocket(Napi::Env env, uint32_t p, uint32_t c, uint32_t key) {
  Port& port = ports_[p];
  const std::string what = port.ifname + " class " + std::to_string(c);
  sockets_.emplace_back();
  Socket& s = sockets_.back();
  s.port = static_cast<uint16_t>(p);
  s.cls = static_cast<uint16_t>(c);
  s.key = key;
  s.fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (s.fd < 0) ThrowErrno(env, "xsk_socket(" + what + ")", errno);
  const bool owner = p == 0 && c == 0;  // registers the UMEM
  const bool portOwner = c == 0;       // owns the port's fill/completion/TX rings
  uint32_t size = cfg_.ringSize;
  if (owner) {
    struct xdp_umem_reg reg = {};
    reg.addr = reinterpret_cast<uint64_t>(umem_);
    reg.len = umemLen_;
    reg.chunk_size = cfg_.frameSize;
    reg.headroom = 0;
    if (setsockopt(s.fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg)) ThrowErrno(env, "xsk_umem_reg(" + what + ")", errno);
  }
  if (portOwner) {
    if (setsockopt(s.fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof size) ||
        setsockopt(s.fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof size))
      ThrowErrno(env, "xsk_fill_completion_rings(" + what + ")", errno);
    if (setsockopt(s.fd, SOL_XDP, XDP_TX_RING, &size, sizeof size)) ThrowErrno(env, "xsk_tx_ring(" + what + ")", errno);
    // One kick for a whole step's batch instead of one per 32 descriptors. Kernels before
    // 6.17 refuse the option (ENOPROTOOPT) and keep their 32.
    unsigned budget = std::min<unsigned>(size, kTxBatch);
    if (budget >= kDefaultTxBudget && setsockopt(s.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget) == 0)
      port.txBudget = budget;
  }
  if (setsockopt(s.fd, SOL_XDP, XDP_RX_RING, &size, sizeof size)) ThrowErrno(env, "xsk_rx_ring(" + what + ")", errno);

  struct xdp_mmap_offsets off = {};
  socklen_t optlen = sizeof off;
  if (getsockopt(s.fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen)) ThrowErrno(env, "xsk_mmap_offsets(" + what + ")", errno);
  auto map = [&](MappedRing& m, size_t len, off_t pgoff, const char* ring) {
    m.len = len;
    m.addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, s.fd, pgoff);
    if (m.addr == MAP_FAILED) ThrowErrno(env, std::string("xsk_mmap_") + ring + "(" + what + ")", errno);
  };
  map(s.rxMap, off.rx.desc + size * sizeof(struct xdp_desc), XDP_PGOFF_RX_RING, "rx");
  SetRing(s.rxMap.addr, off.rx, size, false, nullptr, &s.rx);
  if (portOwner) {
    map(s.txMap, off.tx.desc + size * sizeof(struct xdp_desc), XDP_PGOFF_TX_RING, "tx");
    SetRing(s.txMap.addr, off.tx, size, true, &s.tx, nullptr);
    map(port.fillMap, off.fr.desc + size * sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING, "fill");
    SetRing(port.fillMap.addr, off.fr, size, true, &port.fill, nullptr);
    map(port.compMap, off.cr.desc + size * sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING, "completion");
    SetRing(port.compMap.addr, off.cr, size, false, nullptr, &port.comp);
    port.txSocket = sockets_.size() - 1;
  }

  struct sockaddr_xdp sxdp = {};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_ifindex = port.ifindex;
  sxdp.sxdp_queue_id = 0;
  if (owner) {
    sxdp.sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP;
  } else {
    // Another device shares the UMEM with the first socket (and brings its own fill and
    // completion rings); another class on the same device shares the port's buffer pool.
    sxdp.sxdp_flags = XDP_SHARED_UMEM;
    sxdp.sxdp_shared_umem_fd = portOwner ? sockets_[0].fd : sockets_[port.txSocket].fd;
  }
  // A queue stays busy for a moment after the previous delay line on it closed: the kernel
  // releases the buffer pool from a workqueue. Retry for a bounded time.
  int err = 0;
  for (int64_t giveUp = MonoNs() + kBindBusyRetryNs;;) {
    if (bind(s.fd, reinterpret_cast<struct sockaddr*>(&sxdp), sizeof sxdp) == 0) break;
    err = errno;
    if (err != EBUSY || MonoNs() > giveUp) ThrowErrno(env, "xsk_bind(" + what + " queue 0 copy mode)", err);
    usleep(kBindBusyPollUs);
  }
}

void Line::RemoveFromMap() {
  for (Socket& s : sockets_) {
    if (s.inMap) bpf_map_delete_elem(mapFd_, &s.key);
    s.inMap = false;
  }
}

void Line::ReleaseKernel() {
  for (Socket& s : sockets_) {
    s.rxMap.Unmap();
    s.txMap.Unmap();
  }
  for (Port& p : ports_) {
    p.fillMap.Unmap();
    p.compMap.Unmap();
  }
  for (Socket& s : sockets_) {
    if (s.fd >= 0) close(s.fd);
    s.fd = -1;
  }
  if (umem_ != MAP_FAILED) munmap(umem_, umemLen_);
  umem_ = MAP_FAILED;
  live_.Release();
}

void Line::CloseJsDescriptors() {
  if (mapFd_ >= 0) close(mapFd_);
  mapFd_ = -1;
  if (eventFd_ >= 0) close(eventFd_);
  eventFd_ = -1;
}

void Line::Wake() {
  uint64_t one = 1;
  if (eventFd_ >= 0 && write(eventFd_, &one, sizeof one) < 0) {
    // EAGAIN: the counter is already non-zero, the thread will wake anyway.
  }
}

KernelCounters Line::ReadKernelCounters() const {
  KernelCounters k;
  for (const Socket& s : sockets_) {
    if (s.fd < 0) continue;
    struct xdp_statistics st = {};
    socklen_t len = sizeof st;
    if (getsockopt(s.fd, SOL_XDP, XDP_STATISTICS, &st, &len)) continue;
    k.rxDropped += st.rx_dropped;
    k.rxInvalid += st.rx_invalid_descs;
    k.txInvalid += st.tx_invalid_descs;
    k.rxRingFull += st.rx_ring_full;
    k.fillRingEmpty += st.rx_fill_ring_empty_descs;
    k.txRingEmpty += st.tx_ring_empty_descs;
  }
  return k;
}

KernelCounters Line::KernelStats() {
  std::lock_guard<std::mutex> lock(kernelMutex_);
  return kernelSaved_ ? kernelAtClose_ : ReadKernelCounters();
}

// ----- the rings, each step (thread) ----------------------------------------------------------

uint32_t Line::DrainCompletions() {
  uint32_t total = 0;
  for (Port& port : ports_) {
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&port.comp, port.comp.size, &idx);
    for (uint32_t i = 0; i < n; i++)
      freeFrames_.push_back(static_cast<uint32_t>(*xsk_ring_cons__comp_addr(&port.comp, idx + i) >> frameShift_));
    if (n) {
      xsk_ring_cons__release(&port.comp, n);
      port.txOutstanding -= std::min<uint64_t>(n, port.txOutstanding);
    }
    total += n;
  }
  return total;
}

void Line::RefillFill(Port& port) {
  uint32_t want = std::min<uint32_t>(static_cast<uint32_t>(freeFrames_.size()), xsk_prod_nb_free(&port.fill, port.fill.size));
  if (want == 0) return;
  uint32_t idx;
  if (xsk_ring_prod__reserve(&port.fill, want, &idx) != want) return;
  for (uint32_t i = 0; i < want; i++) {
    *xsk_ring_prod__fill_addr(&port.fill, idx + i) = static_cast<uint64_t>(freeFrames_.back()) << frameShift_;
    freeFrames_.pop_back();
  }
  xsk_ring_prod__submit(&port.fill, want);
}

bool Line::ReceiveAll(int64_t now) {
  bool any = false;
  for (Socket& s : sockets_) {
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&s.rx, kRxBatch, &idx);
    if (n == 0) continue;
    any = true;
    for (uint32_t i = 0; i < n; i++) {
      const struct xdp_desc* d = xsk_ring_cons__rx_desc(&s.rx, idx + i);
      OnFrame(s, d->addr, d->len, now);
    }
    xsk_ring_cons__release(&s.rx, n);
  }
  return any;
}

// Writes one frame into its egress port's TX ring; false when the ring is full or this step's
// batch for the port is complete (the caller keeps the frame).
bool Line::EmitSocket(uint32_t idx, int64_t now) {
  const FrameMeta& m = meta_[idx];
  Port& port = ports_[m.egress];
  Socket& s = sockets_[port.txSocket];
  if (port.txReserved >= kTxBatch) return false;
  uint32_t slot;
  if (xsk_ring_prod__reserve(&s.tx, 1, &slot) != 1) {
    if (!port.txError) return false;
    // The port is down or gone and its TX ring is full: the frame is lost, as on a cable that
    // was pulled, rather than held until the wheel overflows.
    freeFrames_.push_back(idx);
    Bump(counters_.txDropped);
    return true;
  }
  struct xdp_desc* d = xsk_ring_prod__tx_desc(&s.tx, slot);
  d->addr = m.addr;
  d->len = m.len;
  d->options = 0;
  // The kernel copies the frame out of the UMEM in sendto(); it was written there long ago, by
  // another CPU. Asking for it now overlaps the cache misses of the batch.
  __builtin_prefetch(static_cast<const char*>(umem_) + m.addr);
  port.txReserved++;
  Sent(m, now);
  return true;
}

// Returns false when a TX ring still holds descriptors the kernel has not taken; sets
// txStalled_ when a kick found the kernel unable to take any.
bool Line::SubmitAndKick() {
  bool drained = true;
  txStalled_ = false;
  for (Port& port : ports_) {
    Socket& s = sockets_[port.txSocket];
    if (port.txReserved) {
      xsk_ring_prod__submit(&s.tx, port.txReserved);
      port.txOutstanding += port.txReserved;
      port.txReserved = 0;
    }
    // Copy mode: the kernel only transmits inside sendto(), 32 descriptors per call. A port
    // whose last kick failed is tried again after kTxErrorRetryNs, not on every step.
    if (TxRingIdle(s)) {
      port.txError = 0;  // nothing waits for this port: no reason to come back for it
      continue;
    }
    if (port.txError && MonoNs() - port.txErrorAt < kTxErrorRetryNs) continue;
    const uint32_t consumedAtStart = __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE);
    uint32_t consumedBefore = consumedAtStart;
    for (int k = 0; k < kMaxKicksPerStep; k++) {
      uint32_t consumed = __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE);
      if (consumed == *s.tx.producer) break;
      // A step's worth has left: back to the RX rings first, the rest goes in the next step.
      if (consumed - consumedAtStart >= kTxBatch) break;
      if (!xsk_ring_prod__needs_wakeup(&s.tx)) break;
      if (sendto(s.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
        port.txError = 0;
        continue;
      }
      if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS) {
        port.txError = 0;
        // A full completion ring stops copy-mode TX: emptying it is progress, kick again.
        bool recycled = DrainCompletions() > 0;
        // EAGAIN also ends every call that used its budget; only a kick that took nothing while
        // nothing came back means the kernel is stalled (send buffer full of skbs in flight).
        if (__atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) == consumedBefore && !recycled) {
          txStalled_ = true;
          break;
        }
        consumedBefore = __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE);
        continue;
      }
      port.txError = errno;  // ENETDOWN, ENXIO: retried every kTxErrorRetryNs, not spun on
      port.txErrorAt = MonoNs();
      Bump(counters_.txErrors);
      break;
    }
    drained &= port.txError != 0 || TxRingIdle(s);
  }
  return drained;
}

}  // namespace bae::delay
