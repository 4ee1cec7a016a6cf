// The AF_XDP delay line (docs/emulation.md).
//
// XDP cannot hold a packet, and this kernel has no netem or fq. So the XDP program redirects
// frames that must wait into an XSKMAP; here one native thread receives them from AF_XDP sockets,
// decides per frame (duplicate, overflow, reorder, delay + jitter as netem does), holds them in a
// timing wheel and transmits each on the egress port's socket when it is due.
//
// Sockets and UMEM: one UMEM for every port, so a frame received on port A is transmitted on
// port B without a copy. Each port gets one socket per delay class, all bound to queue 0 in copy
// mode (veth refuses zero-copy). The class-0 socket of a port owns the port's fill and
// completion rings and its TX ring; the other classes' sockets share that buffer pool (same
// device and queue) and only receive. The socket a frame arrives on therefore names its class:
// the XDP program chooses the class by choosing the XSKMAP slot (metadata is not delivered
// reliably in copy mode). libxdp's xsk_socket__create_shared always shares with the first
// socket of the UMEM, which the kernel refuses for a second socket on another device's queue,
// so the sockets are set up here with the raw socket options; xsk.h supplies the ring helpers.
//
// Transmission: a step's due frames leave through the port's AF_XDP TX ring (copy mode: the
// kernel builds an skb per frame inside sendto(), about 1 us each), or, when the caller gave the
// XDP program that feeds the line and a step has at least kLiveMinBatch frames to send, as XDP
// frames: the thread writes them into the program's dl_tx_slots array (memory-mapped) and runs
// the program once per frame with BPF_PROG_RUN in live-frames mode (bpf/delay_tx.h), which
// redirects each to its egress port without an skb. That is 4-5 times cheaper per frame but costs
// ~15 us per call, so small batches (a lightly loaded line) keep the socket.
//
// Threads: the JS thread sets up, starts, reads stats and closes. The delay-line thread owns the
// rings, the wheel and the decision state; parameters reach it through a mutex-guarded copy and
// a generation counter, stats leave it through relaxed atomics it alone writes.
#include "delay_line.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif
// Linux 6.17+: descriptors one copy-mode sendto() may transmit (default 32, at most the TX ring).
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif

namespace bae {
namespace {

constexpr uint32_t kNil = UINT32_MAX;
// Frames taken from one RX ring per step: twice what a busy step transmits (kTxBatch), so that
// a burst is absorbed while TX is busy, but a source far faster than the line is held back by
// the kernel (rxRingFull) instead of costing the thread ~0.1 us a frame to take in frames it
// could only shed later (overflow, lateDropped).
constexpr uint32_t kRxBatch = 512;
// Frames handed to one port's TX ring per step. Copy-mode transmission happens inside sendto()
// at about 1 us a frame (skb, copy, and the receiving veth's work), so this bounds the time one
// step spends away from the RX rings: a step never leaves them unread for much more than 256 us.
constexpr uint32_t kTxBatch = 256;
// Copy-mode TX sends at most its budget (32 descriptors, more with XDP_MAX_TX_SKB_BUDGET) per
// sendto(); kicks per step are bounded so a port that does not drain cannot stall the thread.
constexpr int kMaxKicksPerStep = 64;
// close(): held frames are transmitted at once; whatever has not left after this long is dropped.
constexpr int64_t kFlushDeadlineNs = 200'000'000;
// bind() of a queue whose previous socket was just closed: EBUSY until the kernel's deferred
// release ran; give up after this long.
constexpr int64_t kBindBusyRetryNs = 500'000'000;
// A port whose kicks fail (down, gone) is retried this often.
constexpr int64_t kTxErrorRetryNs = 1'000'000;
// SCHED_FIFO priority of the thread when real-time scheduling is asked for: the lowest band,
// above every normal task, below the kernel's own real-time threads.
constexpr int kRealtimePriority = 10;
// The thread re-checks a full TX ring this often instead of sleeping until the next due time.
constexpr int64_t kTxRetryNs = 20'000;

// Live transmission (bpf/delay_tx.h): the layout of dl_tx_slots and dl_tx_ctl, the longest
// frame it takes (DL_TX_DATA_MAX), and the ingress device the program recognises it by.
constexpr uint32_t kLiveDataMax = 3072;
struct LiveSlot {
  uint32_t len;
  uint32_t ifindex;
  uint8_t data[kLiveDataMax];
};
struct LiveCtl {
  uint32_t next;
  uint32_t count;
  uint64_t failed;
};
constexpr uint32_t kLiveIngressIfindex = 1;  // the loopback device
// A step sends through the live path only with at least this many frames: a BPF_PROG_RUN call
// costs ~15 us before its first frame (a page pool made and torn down), the socket ~1 us a frame.
constexpr uint32_t kLiveMinBatch = 16;
// How often the live path re-reads a port's link state: an XDP redirect to a port that is down
// fails without telling the caller, so frames for a port found down take the socket path, which
// notices and counts.
constexpr int64_t kLinkCheckNs = 1'000'000;

int64_t MonoNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Single writer (the delay-line thread), many readers: a plain load/store pair is enough and
// avoids a locked instruction per frame.
inline void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Randomness: PCG32 (O'Neill), one stream per class so that a class's decisions depend only on
// the seed and that class's frame sequence.
class Pcg32 {
 public:
  void Seed(uint64_t seed, uint64_t stream) {
    state_ = 0;
    inc_ = (stream << 1) | 1;
    Next();
    state_ += seed;
    Next();
  }
  uint32_t Next() {
    uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    uint32_t xorshifted = static_cast<uint32_t>(((old >> 18) ^ old) >> 27);
    uint32_t rot = static_cast<uint32_t>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
  }

 private:
  uint64_t state_ = 0;
  uint64_t inc_ = 1;
};

// netem's correlated random number: the new draw is blended with the previous result,
// answer = (value * (2^32 - rho) + last * rho) / 2^32. With rho = 0 the draw is independent and
// `last` is left alone, as netem does.
struct Correlation {
  uint32_t last = 0;
  uint32_t Draw(Pcg32& rng, uint32_t rho) {
    uint32_t value = rng.Next();
    if (rho == 0) return value;
    uint64_t r = static_cast<uint64_t>(rho) + 1;
    uint32_t answer = static_cast<uint32_t>(
        (static_cast<uint64_t>(value) * ((1ULL << 32) - r) + static_cast<uint64_t>(last) * r) >> 32);
    last = answer;
    return answer;
  }
};

// ---------------------------------------------------------------------------------------------
// Jitter distributions as netem defines them: a table of 4096 quantiles of a unit distribution,
// one picked by a (correlated) random number, delay = mu + sigma * table[index]. netem takes the
// index (and the uniform offset) modulo the table size, which throws away the correlation it has
// just computed; here the random number maps monotonically (top 12 bits, or scaling for uniform),
// so that a correlated random number gives a correlated delay. The tables
// are those iproute2 ships (normal.dist, pareto.dist, paretonormal.dist), computed here from
// their definitions at the midpoint of each 1/4096 probability step, clamped like the int16
// tables to +-32767/8192.
enum Distribution : uint32_t { kUniform = 0, kNormal = 1, kPareto = 2, kParetoNormal = 3 };
constexpr uint32_t kTableSize = 4096;
constexpr int kTableShift = 32 - 12;  // top 12 bits of a 32-bit random number index the table
constexpr double kTableClamp = 32767.0 / 8192.0;

struct DistTables {
  std::array<double, kTableSize> normal, pareto, paretonormal;
};

double NormalQuantile(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 80; i++) {
    double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

// Pareto with shape 3 and scale 1 (mean 1.5), shifted to mean 0 and scaled by 4/3 (netem).
double ParetoQuantile(double p) { return (std::pow(1.0 - p, -1.0 / 3.0) - 1.5) * (4.0 / 3.0); }

const DistTables& Tables() {
  static const DistTables* tables = [] {
    auto* t = new DistTables();
    for (uint32_t k = 0; k < kTableSize; k++) {
      double p = (k + 0.5) / kTableSize;
      double n = NormalQuantile(p), par = ParetoQuantile(p);
      t->normal[k] = std::clamp(n, -kTableClamp, kTableClamp);
      t->pareto[k] = std::clamp(par, -kTableClamp, kTableClamp);
      // paretonormal: the quantiles of both added with weights 1/4 and 3/4 (not a mixture).
      t->paretonormal[k] = std::clamp((n + 3 * par) / 4, -kTableClamp, kTableClamp);
    }
    return t;
  }();
  return *tables;
}

// Parameters of one delay class, in the units the thread uses. Probabilities are thresholds on a
// 32-bit random number: an event happens when rnd < threshold (threshold 2^32 = always).
struct ClassParams {
  int64_t delayNs = 0;
  int64_t jitterNs = 0;
  uint32_t distribution = kUniform;
  uint32_t delayRho = 0;
  uint64_t duplicate = 0;
  uint32_t duplicateRho = 0;
  uint64_t reorder = 0;
  uint32_t reorderRho = 0;
  uint32_t reorderGap = 1;
};

struct ClassState {
  ClassParams p;
  Pcg32 rng;
  Correlation delayCor, duplicateCor, reorderCor;
  uint32_t reorderCounter = 0;  // frames delayed since the last reordered one (netem's counter)

  void Reseed(uint64_t seed, uint32_t classId) {
    rng.Seed(seed, classId);
    delayCor = {};
    duplicateCor = {};
    reorderCor = {};
    reorderCounter = 0;
  }

  // netem's tabledist(): no jitter, no draw.
  int64_t DrawDelay() {
    if (p.jitterNs == 0) return std::max<int64_t>(p.delayNs, 0);
    uint32_t rnd = delayCor.Draw(rng, p.delayRho);
    double mu = static_cast<double>(p.delayNs), sigma = static_cast<double>(p.jitterNs), d;
    const DistTables& t = Tables();
    switch (p.distribution) {
      case kNormal: d = mu + sigma * t.normal[rnd >> kTableShift]; break;
      case kPareto: d = mu + sigma * t.pareto[rnd >> kTableShift]; break;
      case kParetoNormal: d = mu + sigma * t.paretonormal[rnd >> kTableShift]; break;
      default: d = mu - sigma + 2 * sigma * (rnd / 4294967296.0); break;
    }
    // A negative delay means "now": netem's time_to_send lands in the past and leaves at once.
    return d <= 0 ? 0 : static_cast<int64_t>(std::llround(d));
  }
};

// ---------------------------------------------------------------------------------------------
// Per-frame bookkeeping, indexed by UMEM frame number.
struct FrameMeta {
  int64_t due;
  uint64_t addr;  // descriptor address (chunk base + offset of the data)
  uint32_t len;
  uint32_t next;  // list link (wheel slot or immediate queue)
  uint16_t egress;
  uint16_t cls;
};

struct FrameList {
  uint32_t head = kNil, tail = kNil;
  bool empty() const { return head == kNil; }
};

// A timing wheel of 2^18 slots of 4.096 us: 1.07 s ahead of the cursor. Frames due further away
// wait in a min-heap and move into the wheel as the cursor approaches. A two-level bitmap finds
// the next occupied slot without walking empty ones. Within a slot frames keep arrival order, so
// a constant delay never reorders.
class TimingWheel {
 public:
  static constexpr int kSlotShift = 12;
  static constexpr uint32_t kSlots = 1u << 18;
  static constexpr uint32_t kMask = kSlots - 1;

  explicit TimingWheel(std::vector<FrameMeta>& meta)
      : meta_(meta), slots_(kSlots), bits_(kSlots / 64), summary_(kSlots / 64 / 64) {}

  void Start(int64_t now) { cursor_ = now >> kSlotShift; }
  size_t size() const { return wheelCount_ + far_.size(); }

  void Insert(uint32_t idx) {
    int64_t slot = std::max(meta_[idx].due >> kSlotShift, cursor_);
    if (slot - cursor_ >= static_cast<int64_t>(kSlots)) {
      far_.push_back(idx);
      std::push_heap(far_.begin(), far_.end(), FarLater{meta_});
      return;
    }
    Append(static_cast<uint32_t>(slot) & kMask, idx);
  }

  // Hands every frame due at or before `now` to emit(idx) in due order (slot by slot). Returns
  // false when emit refused a frame (TX ring full): it stays, and the next call resumes there.
  template <typename Emit>
  bool PopDue(int64_t now, Emit&& emit) {
    const int64_t target = now >> kSlotShift;
    for (;;) {
      MigrateFar();
      int64_t slot = NextOccupied();
      if (slot < 0) {
        if (far_.empty() || (meta_[far_.front()].due >> kSlotShift) > target) {
          cursor_ = std::max(cursor_, target);
          return true;
        }
        cursor_ = meta_[far_.front()].due >> kSlotShift;  // empty wheel: jump to the far frame
        continue;
      }
      if (slot > target) {
        cursor_ = std::max(cursor_, target);
        return true;
      }
      cursor_ = slot;
      FrameList& list = slots_[static_cast<uint32_t>(slot) & kMask];
      uint32_t prev = kNil, idx = list.head;
      while (idx != kNil) {
        uint32_t next = meta_[idx].next;
        if (meta_[idx].due <= now) {
          if (!emit(idx)) return false;
          if (prev == kNil) list.head = next; else meta_[prev].next = next;
          if (list.tail == idx) list.tail = prev;
          wheelCount_--;
        } else {
          prev = idx;
        }
        idx = next;
      }
      if (!list.empty()) return true;  // the current slot still holds frames due later
      ClearBit(static_cast<uint32_t>(slot) & kMask);
      if (slot >= target) return true;
      cursor_ = slot + 1;
    }
  }

  // Earliest due time held, INT64_MAX when empty.
  int64_t NextDue() {
    int64_t best = far_.empty() ? INT64_MAX : meta_[far_.front()].due;
    int64_t slot = NextOccupied();
    if (slot >= 0) {
      for (uint32_t idx = slots_[static_cast<uint32_t>(slot) & kMask].head; idx != kNil; idx = meta_[idx].next)
        best = std::min(best, meta_[idx].due);
    }
    return best;
  }

 private:
  struct FarLater {
    const std::vector<FrameMeta>& meta;
    bool operator()(uint32_t a, uint32_t b) const { return meta[a].due > meta[b].due; }
  };

  void Append(uint32_t s, uint32_t idx) {
    FrameList& list = slots_[s];
    meta_[idx].next = kNil;
    if (list.empty()) {
      list.head = list.tail = idx;
      bits_[s >> 6] |= 1ULL << (s & 63);
      summary_[s >> 12] |= 1ULL << ((s >> 6) & 63);
    } else {
      meta_[list.tail].next = idx;
      list.tail = idx;
    }
    wheelCount_++;
  }

  void ClearBit(uint32_t s) {
    bits_[s >> 6] &= ~(1ULL << (s & 63));
    if (bits_[s >> 6] == 0) summary_[s >> 12] &= ~(1ULL << ((s >> 6) & 63));
  }

  void MigrateFar() {
    while (!far_.empty()) {
      uint32_t idx = far_.front();
      int64_t slot = std::max(meta_[idx].due >> kSlotShift, cursor_);
      if (slot - cursor_ >= static_cast<int64_t>(kSlots)) return;
      std::pop_heap(far_.begin(), far_.end(), FarLater{meta_});
      far_.pop_back();
      Append(static_cast<uint32_t>(slot) & kMask, idx);
    }
  }

  // First set bit at position >= from, or kSlots.
  uint32_t FindSetFrom(uint32_t from) const {
    uint32_t w = from >> 6;
    uint64_t word = bits_[w] & (~0ULL << (from & 63));
    if (word) return (w << 6) + __builtin_ctzll(word);
    for (uint32_t sw = (w + 1) >> 6, first = (w + 1) & 63; sw < summary_.size(); sw++, first = 0) {
      if (first >= 64) continue;
      uint64_t s = summary_[sw] & (~0ULL << first);
      if (s) {
        uint32_t wi = (sw << 6) + __builtin_ctzll(s);
        return (wi << 6) + __builtin_ctzll(bits_[wi]);
      }
    }
    return kSlots;
  }

  // Absolute slot number of the first occupied slot at or after the cursor, -1 if none.
  int64_t NextOccupied() const {
    if (wheelCount_ == 0) return -1;
    uint32_t start = static_cast<uint32_t>(cursor_) & kMask;
    uint32_t pos = FindSetFrom(start);
    if (pos == kSlots) pos = FindSetFrom(0);
    if (pos == kSlots) return -1;
    return cursor_ + ((pos - start) & kMask);
  }

  std::vector<FrameMeta>& meta_;
  std::vector<FrameList> slots_;
  std::vector<uint64_t> bits_;
  std::vector<uint64_t> summary_;
  std::vector<uint32_t> far_;  // min-heap on due
  int64_t cursor_ = 0;         // absolute slot number (time >> kSlotShift) being served
  size_t wheelCount_ = 0;
};

// Lateness (actual transmit time - due time) histogram: 8 buckets per power of two, exact below
// 8 ns, up to about 2^41 ns.
constexpr unsigned kLatenessBuckets = 320;
inline unsigned LatenessBucket(uint64_t v) {
  if (v < 8) return static_cast<unsigned>(v);
  unsigned e = 63 - __builtin_clzll(v);
  unsigned idx = (e - 2) * 8 + static_cast<unsigned>((v >> (e - 3)) & 7);
  return std::min(idx, kLatenessBuckets - 1);
}
inline uint64_t LatenessBucketLow(unsigned i) {
  if (i < 8) return i;
  unsigned e = i / 8 + 2;
  return static_cast<uint64_t>(8 + i % 8) << (e - 3);
}

struct Counters {
  std::atomic<uint64_t> received{0}, transmitted{0}, overflow{0}, duplicated{0}, duplicateSkipped{0},
      reordered{0}, txErrors{0}, txDropped{0}, lateDropped{0}, flushedAtClose{0}, droppedAtClose{0}, liveCalls{0},
      liveTransmitted{0};
};

// ---------------------------------------------------------------------------------------------
// AF_XDP plumbing.
struct MappedRing {
  void* addr = MAP_FAILED;
  size_t len = 0;
  void Unmap() {
    if (addr != MAP_FAILED) munmap(addr, len);
    addr = MAP_FAILED;
  }
};

struct Socket {
  int fd = -1;
  uint16_t port = 0;
  uint16_t cls = 0;
  uint32_t key = 0;  // XSKMAP slot
  bool inMap = false;
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};  // class-0 sockets only
  MappedRing rxMap, txMap;
};

struct Port {
  std::string ifname;
  uint32_t ifindex = 0;
  uint16_t egress = 0;
  size_t txSocket = 0;  // index into sockets_ of the class-0 socket
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  MappedRing fillMap, compMap;
  uint32_t txReserved = 0;     // descriptors written in this step, not yet submitted
  uint32_t txBudget = 32;      // descriptors one sendto() may transmit
  uint64_t txOutstanding = 0;  // submitted, completion not seen yet
  int txError = 0;             // errno of the last failed kick (port down, gone), 0 when it works
  int64_t txErrorAt = 0;       // when that kick failed
  bool up = true;              // IFF_UP and IFF_RUNNING when last read (live path only)
  int64_t upCheckedAt = 0;     // monotonic time: 0 is long enough ago to read it at once
};

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

// ---------------------------------------------------------------------------------------------
class DelayLine : public Napi::ObjectWrap<DelayLine>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DelayLine",
                       {
                           StaticMethod<&DelayLine::IfIndex>("ifindex"),
                           InstanceMethod<&DelayLine::JsStart>("start"),
                           InstanceMethod<&DelayLine::JsSetParams>("setParams"),
                           InstanceMethod<&DelayLine::JsSetSeed>("setSeed"),
                           InstanceMethod<&DelayLine::JsStats>("stats"),
                           InstanceMethod<&DelayLine::JsRecordDelays>("recordDelays"),
                           InstanceMethod<&DelayLine::JsTakeDelays>("takeDelays"),
                           InstanceMethod<&DelayLine::JsClose>("close"),
                           InstanceAccessor<&DelayLine::JsClosed>("closed"),
                       });
  }

  // new DelayLine(xskMapFd, ports: {ifname, egress, keys[]}[], classes, frames, frameSize,
  //               ringSize, maxInFlight, overflowPass, spinNs, realtime, maxLateNs, cpu (-1: any),
  //               liveProgFd, liveSlotsFd, liveCtlFd (-1: transmit through the sockets only))
  explicit DelayLine(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<DelayLine>(info), Closable(info.Env()), wheel_(meta_) {
    Napi::Env env = info.Env();
    int mapFd = ArgInt(info, 0);
    Napi::Array ports = info[1].As<Napi::Array>();
    classes_ = ArgUint(info, 2);
    frames_ = ArgUint(info, 3);
    frameSize_ = ArgUint(info, 4);
    ringSize_ = ArgUint(info, 5);
    maxInFlight_ = ArgUint(info, 6);
    overflowPass_ = info[7].ToBoolean().Value();
    spinNs_ = static_cast<int64_t>(info[8].As<Napi::Number>().Int64Value());
    realtime_ = info[9].ToBoolean().Value();
    maxLateNs_ = static_cast<int64_t>(info[10].As<Napi::Number>().Int64Value());
    cpu_ = info[11].As<Napi::Number>().Int32Value();
    const int liveProg = info[12].As<Napi::Number>().Int32Value();
    const int liveSlots = info[13].As<Napi::Number>().Int32Value();
    const int liveCtl = info[14].As<Napi::Number>().Int32Value();
    if (!info[1].IsArray() || ports.Length() == 0 || ports.Length() > kDelayPortsMax || classes_ == 0 ||
        classes_ > kDelayClassesMax || (frameSize_ != 2048 && frameSize_ != 4096) || frames_ == 0 ||
        (ringSize_ & (ringSize_ - 1)) != 0 || maxLateNs_ <= 0 || cpu_ < -1 || cpu_ >= CPU_SETSIZE)
      throw Napi::RangeError::New(env, "DelayLine: arguments out of range (checked in TypeScript)");
    frameShift_ = frameSize_ == 2048 ? 11 : 12;
    try {
      Setup(env, mapFd, ports);
      if (liveProg >= 0) SetupLive(env, liveProg, liveSlots, liveCtl);
    } catch (...) {
      Release();
      throw;
    }
  }

  ~DelayLine() override { Close(); }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    // Stop steering frames here first, then let the thread flush what it holds.
    for (Socket& s : sockets_) {
      if (s.inMap) bpf_map_delete_elem(mapFd_, &s.key);
      s.inMap = false;
    }
    if (thread_.joinable()) {
      stop_.store(true, std::memory_order_release);
      Wake();
      thread_.join();
    }
    kernelAtClose_ = KernelStats();
    kernelSaved_ = true;
    Release();
    Untrack();
  }

 private:
  // ----- setup (JS thread) --------------------------------------------------------------------
  void Setup(Napi::Env env, int mapFd, Napi::Array ports) {
    mapFd_ = fcntl(mapFd, F_DUPFD_CLOEXEC, 3);
    if (mapFd_ < 0) ThrowErrno(env, "dup(xskmap)", errno);
    eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventFd_ < 0) ThrowErrno(env, "eventfd", errno);

    umemLen_ = static_cast<size_t>(frames_) * frameSize_;
    umem_ = mmap(nullptr, umemLen_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (umem_ == MAP_FAILED) ThrowErrno(env, "mmap(UMEM of " + std::to_string(umemLen_) + " bytes)", errno);
    meta_.assign(frames_, FrameMeta{0, 0, 0, kNil, 0, 0});
    freeFrames_.reserve(frames_);
    for (uint32_t i = frames_; i-- > 0;) freeFrames_.push_back(i);

    ports_.resize(ports.Length());
    for (uint32_t p = 0; p < ports.Length(); p++) {
      Napi::Object spec = ports.Get(p).As<Napi::Object>();
      ports_[p].ifname = spec.Get("ifname").As<Napi::String>().Utf8Value();
      ports_[p].egress = static_cast<uint16_t>(spec.Get("egress").As<Napi::Number>().Uint32Value());
      if (ports_[p].egress >= ports.Length()) throw Napi::RangeError::New(env, "DelayLine: egress port out of range");
      ports_[p].ifindex = if_nametoindex(ports_[p].ifname.c_str());
      if (ports_[p].ifindex == 0) ThrowErrno(env, "if_nametoindex(" + ports_[p].ifname + ")", errno);
    }
    sockets_.reserve(ports_.size() * classes_);
    for (uint32_t p = 0; p < ports_.size(); p++) {
      Napi::Array keys = ports.Get(p).As<Napi::Object>().Get("keys").As<Napi::Array>();
      if (keys.Length() != classes_) throw Napi::RangeError::New(env, "DelayLine: one XSKMAP key per class");
      for (uint32_t c = 0; c < classes_; c++)
        OpenSocket(env, p, c, keys.Get(c).As<Napi::Number>().Uint32Value());
    }
    for (Port& port : ports_) RefillFill(port);
  }

  // The live path: the program's two arrays, checked against bpf/delay_tx.h, mapped here.
  void SetupLive(Napi::Env env, int progFd, int slotsFd, int ctlFd) {
    auto mapInfo = [&](int fd, const char* what) {
      struct bpf_map_info mi = {};
      __u32 len = sizeof mi;
      if (bpf_obj_get_info_by_fd(fd, &mi, &len)) ThrowErrno(env, std::string("bpf_map_get_info_by_fd(") + what + ")", errno);
      return mi;
    };
    struct bpf_map_info slots = mapInfo(slotsFd, "dl_tx_slots"), ctl = mapInfo(ctlFd, "dl_tx_ctl");
    if (slots.type != BPF_MAP_TYPE_ARRAY || !(slots.map_flags & BPF_F_MMAPABLE) || slots.value_size != sizeof(LiveSlot) ||
        slots.max_entries == 0 || ctl.type != BPF_MAP_TYPE_ARRAY || !(ctl.map_flags & BPF_F_MMAPABLE) ||
        ctl.value_size != sizeof(LiveCtl) || ctl.max_entries != 1)
      throw Napi::TypeError::New(env, "DelayLine: the transmit maps do not have the layout of bpf/delay_tx.h (rebuild the BPF object?)");
    liveProgFd_ = fcntl(progFd, F_DUPFD_CLOEXEC, 3);
    if (liveProgFd_ < 0) ThrowErrno(env, "dup(transmit program)", errno);
    const long page = sysconf(_SC_PAGESIZE);
    auto pages = [&](size_t n) { return (n + page - 1) / page * page; };
    liveSlotsLen_ = pages(static_cast<size_t>(slots.max_entries) * sizeof(LiveSlot));
    liveSlots_ = mmap(nullptr, liveSlotsLen_, PROT_READ | PROT_WRITE, MAP_SHARED, slotsFd, 0);
    if (liveSlots_ == MAP_FAILED) ThrowErrno(env, "mmap(dl_tx_slots)", errno);
    liveCtlLen_ = pages(sizeof(LiveCtl));
    void* ctlMem = mmap(nullptr, liveCtlLen_, PROT_READ | PROT_WRITE, MAP_SHARED, ctlFd, 0);
    if (ctlMem == MAP_FAILED) ThrowErrno(env, "mmap(dl_tx_ctl)", errno);
    liveCtl_ = static_cast<LiveCtl*>(ctlMem);
    liveBatch_ = std::min<uint32_t>(slots.max_entries, kTxBatch);
    ifFd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ifFd_ < 0) ThrowErrno(env, "socket(AF_UNIX) for link state", errno);
    liveIdx_.reserve(liveBatch_);
    live_ = true;
    liveOn_.store(true, std::memory_order_relaxed);
  }

  void OpenSocket(Napi::Env env, uint32_t p, uint32_t c, uint32_t key) {
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
    uint32_t size = ringSize_;
    if (owner) {
      struct xdp_umem_reg reg = {};
      reg.addr = reinterpret_cast<uint64_t>(umem_);
      reg.len = umemLen_;
      reg.chunk_size = frameSize_;
      reg.headroom = 0;
      if (setsockopt(s.fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg))
        ThrowErrno(env, "xsk_umem_reg(" + what + ")", errno);
    }
    if (portOwner) {
      if (setsockopt(s.fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof size) ||
          setsockopt(s.fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof size))
        ThrowErrno(env, "xsk_fill_completion_rings(" + what + ")", errno);
      if (setsockopt(s.fd, SOL_XDP, XDP_TX_RING, &size, sizeof size))
        ThrowErrno(env, "xsk_tx_ring(" + what + ")", errno);
      // One kick for a whole step's batch instead of one per 32 descriptors. Kernels before
      // 6.17 refuse the option (ENOPROTOOPT) and keep their 32.
      unsigned budget = std::min<unsigned>(size, kTxBatch);
      if (budget >= 32 && setsockopt(s.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget) == 0)
        port.txBudget = budget;
    }
    if (setsockopt(s.fd, SOL_XDP, XDP_RX_RING, &size, sizeof size))
      ThrowErrno(env, "xsk_rx_ring(" + what + ")", errno);

    struct xdp_mmap_offsets off = {};
    socklen_t optlen = sizeof off;
    if (getsockopt(s.fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen))
      ThrowErrno(env, "xsk_mmap_offsets(" + what + ")", errno);
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
      usleep(1000);
    }
  }

  void Release() {
    for (Socket& s : sockets_) {
      if (s.inMap) bpf_map_delete_elem(mapFd_, &s.key);
      s.inMap = false;
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
    if (liveSlots_ != MAP_FAILED) munmap(liveSlots_, liveSlotsLen_);
    liveSlots_ = MAP_FAILED;
    if (liveCtl_ != nullptr) munmap(liveCtl_, liveCtlLen_);
    liveCtl_ = nullptr;
    live_ = false;
    if (liveProgFd_ >= 0) close(liveProgFd_);
    liveProgFd_ = -1;
    if (ifFd_ >= 0) close(ifFd_);
    ifFd_ = -1;
    if (mapFd_ >= 0) close(mapFd_);
    mapFd_ = -1;
    if (eventFd_ >= 0) close(eventFd_);
    eventFd_ = -1;
  }

  void Wake() {
    uint64_t one = 1;
    if (eventFd_ >= 0 && write(eventFd_, &one, sizeof one) < 0) {
      // EAGAIN: the counter is already non-zero, the thread will wake anyway.
    }
  }

  // ----- the delay-line thread ----------------------------------------------------------------
  void Run() {
    pthread_setname_np(pthread_self(), "bae-delayline");
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake at the due time, not up to 50 us later
    // A low real-time priority: a woken delay line runs at once instead of waiting for a busy
    // CPU's time slice (milliseconds of lateness otherwise). The kernel's RT throttling still
    // leaves other tasks 5% of the CPU if frames never stop. Refused without CAP_SYS_NICE.
    if (realtime_) {
      struct sched_param sp = {};
      sp.sched_priority = kRealtimePriority;
      realtimeActive_.store(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0, std::memory_order_relaxed);
    }
    std::vector<struct pollfd> pfds;
    for (Socket& s : sockets_) pfds.push_back({s.fd, POLLIN, 0});
    pfds.push_back({eventFd_, POLLIN, 0});
    wheel_.Start(MonoNs());

    while (!stop_.load(std::memory_order_acquire)) {
      ApplyControl();
      DrainCompletions();
      bool received = ReceiveAll(MonoNs());
      for (Port& port : ports_) RefillFill(port);
      int64_t now = MonoNs();
      bool blocked = !TransmitDue(now);
      blocked |= !SubmitAndKick();
      inFlight_.store(wheel_.size(), std::memory_order_relaxed);
      if (received) continue;

      int64_t next = immediate_.empty() ? wheel_.NextDue() : now;
      int64_t wait = next == INT64_MAX ? INT64_MAX : next - MonoNs();
      for (const Port& port : ports_)
        if (port.txError) wait = std::min(wait, kTxErrorRetryNs);
      int64_t spin = spinNs_;
      if (txStalled_) {
        // The kernel took nothing from a TX ring: copy mode waits for the receiving veth to
        // free its skbs, work that runs in softirq context on this CPU, which this real-time
        // thread would starve if it spun. Sleep briefly instead.
        wait = kTxRetryNs;
        spin = 0;
      } else if (blocked) {
        continue;  // the kernel is taking frames: keep kicking
      }
      if (wait <= spin) continue;  // due soon: spin rather than risk a late wake-up
      struct timespec ts, *timeout = nullptr;
      if (wait != INT64_MAX) {
        int64_t sleepNs = wait - spin;
        ts = {static_cast<time_t>(sleepNs / 1'000'000'000), static_cast<long>(sleepNs % 1'000'000'000)};
        timeout = &ts;
      }
      if (ppoll(pfds.data(), pfds.size(), timeout, nullptr) > 0 && (pfds.back().revents & POLLIN)) {
        uint64_t v;
        if (read(eventFd_, &v, sizeof v) < 0) {
          // nothing to do: the next loop re-reads the control state anyway
        }
      }
    }
    Flush();
  }

  void ApplyControl() {
    uint32_t gen = controlGen_.load(std::memory_order_acquire);
    if (gen == seenControlGen_) return;
    std::lock_guard<std::mutex> lock(controlMutex_);
    for (uint32_t c = 0; c < classes_; c++) cls_[c].p = pendingParams_[c];
    if (pendingSeedGen_ != seenSeedGen_) {
      for (uint32_t c = 0; c < classes_; c++) cls_[c].Reseed(pendingSeed_, c);
      seenSeedGen_ = pendingSeedGen_;
    }
    seenControlGen_ = gen;
  }

  // Recycles what the kernel has transmitted; returns how many frames came back.
  uint32_t DrainCompletions() {
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

  void RefillFill(Port& port) {
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

  bool ReceiveAll(int64_t now) {
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

  // The decisions for one received frame, in netem's order: duplicate, queue limit, reorder,
  // delay.
  void OnFrame(const Socket& s, uint64_t addr, uint32_t len, int64_t now) {
    ClassState& cs = cls_[s.cls];
    Bump(counters_.received);
    Bump(classReceived_[s.cls]);
    uint32_t idx = static_cast<uint32_t>(addr >> frameShift_);
    meta_[idx] = FrameMeta{now, addr, len, kNil, ports_[s.port].egress, s.cls};

    if (cs.p.duplicate && cs.duplicateCor.Draw(cs.rng, cs.p.duplicateRho) < cs.p.duplicate) {
      if (freeFrames_.empty()) {
        Bump(counters_.duplicateSkipped);
      } else {
        uint32_t copy = freeFrames_.back();
        freeFrames_.pop_back();
        uint64_t copyAddr = (static_cast<uint64_t>(copy) << frameShift_) | (addr & (frameSize_ - 1));
        std::memcpy(static_cast<char*>(umem_) + copyAddr, static_cast<char*>(umem_) + addr, len);
        meta_[copy] = FrameMeta{now, copyAddr, len, kNil, ports_[s.port].egress, s.cls};
        Bump(counters_.duplicated);
        Schedule(cs, copy, now);
      }
    }
    Schedule(cs, idx, now);
  }

  void Schedule(ClassState& cs, uint32_t idx, int64_t now) {
    if (wheel_.size() >= maxInFlight_) {
      Bump(counters_.overflow);
      Bump(classOverflow_[meta_[idx].cls]);
      if (overflowPass_) PushImmediate(idx);
      else freeFrames_.push_back(idx);
      return;
    }
    // netem's reorder: after gap-1 delayed frames, a frame skips the delay with probability p.
    if (cs.p.reorder && cs.reorderCounter + 1 >= cs.p.reorderGap &&
        cs.reorderCor.Draw(cs.rng, cs.p.reorderRho) < cs.p.reorder) {
      cs.reorderCounter = 0;
      Bump(counters_.reordered);
      PushImmediate(idx);
      return;
    }
    cs.reorderCounter++;
    int64_t delay = cs.DrawDelay();
    meta_[idx].due = now + delay;
    wheel_.Insert(idx);
    if (recording_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(recordMutex_);
      if (recordDelays_.size() < recordCapacity_) {
        recordDelays_.push_back(delay);
        recordClasses_.push_back(static_cast<uint8_t>(meta_[idx].cls));
      }
    }
  }

  void PushImmediate(uint32_t idx) {
    meta_[idx].next = kNil;
    if (immediate_.empty()) immediate_.head = idx; else meta_[immediate_.tail].next = idx;
    immediate_.tail = idx;
  }

  // Takes one due frame into this step's batch; false when the batch is full (the frame stays
  // where it is). A frame too late to be worth sending is dropped here.
  bool Stage(uint32_t idx, int64_t now) {
    if (staged_.size() >= kTxBatch) return false;
    if (now - meta_[idx].due > maxLateNs_ && !flushing_) {
      // Stale: the line fell behind (more frames due than it can transmit). Sending this frame
      // would only make every later one later too; drop it, as a queue that overflows would.
      freeFrames_.push_back(idx);
      Bump(counters_.lateDropped);
      return true;
    }
    staged_.push_back(idx);
    return true;
  }

  // Counts one frame that left: transmitted, and how late (not when close() sends it early).
  void Sent(const FrameMeta& m, int64_t now) {
    Bump(counters_.transmitted);
    Bump(classTransmitted_[m.cls]);
    if (flushing_) return;
    int64_t late = now - m.due;
    Bump(lateness_[LatenessBucket(late > 0 ? static_cast<uint64_t>(late) : 0)]);
    if (late > 0 && static_cast<uint64_t>(late) > latenessMax_.load(std::memory_order_relaxed))
      latenessMax_.store(static_cast<uint64_t>(late), std::memory_order_relaxed);
  }

  // Writes one frame into its egress port's TX ring; false when the ring is full or this step's
  // batch for the port is complete (the caller keeps the frame).
  bool EmitSocket(uint32_t idx, int64_t now) {
    const FrameMeta& m = meta_[idx];
    Port& port = ports_[m.egress];
    Socket& s = sockets_[port.txSocket];
    if (port.txReserved >= kTxBatch) return false;
    uint32_t slot;
    if (xsk_ring_prod__reserve(&s.tx, 1, &slot) != 1) {
      if (!port.txError) return false;
      // The port is down or gone and its TX ring is full: the frame is lost, as on a cable
      // that was pulled, rather than held until the wheel overflows.
      freeFrames_.push_back(idx);
      Bump(counters_.txDropped);
      return true;
    }
    struct xdp_desc* d = xsk_ring_prod__tx_desc(&s.tx, slot);
    d->addr = m.addr;
    d->len = m.len;
    d->options = 0;
    // The kernel copies the frame out of the UMEM in sendto(); it was written there long ago,
    // by another CPU. Asking for it now overlaps the cache misses of the batch.
    __builtin_prefetch(static_cast<const char*>(umem_) + m.addr);
    port.txReserved++;
    Sent(m, now);
    return true;
  }

  // Whether the live path may send to `port`: up and running (read at most every kLinkCheckNs),
  // and nothing of it still waiting in its socket's TX ring, which would leave after this frame.
  bool LiveUsable(Port& port, int64_t now) {
    if (now - port.upCheckedAt >= kLinkCheckNs) {
      struct ifreq ifr = {};
      std::memcpy(ifr.ifr_name, port.ifname.c_str(), std::min(port.ifname.size(), sizeof ifr.ifr_name - 1));
      port.up = ioctl(ifFd_, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
      port.upCheckedAt = now;
    }
    if (!port.up || port.txReserved) return false;
    const Socket& s = sockets_[port.txSocket];
    return __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) == *s.tx.producer;
  }

  // Sends this step's batch. Frames the TX rings cannot take now go back to the front of the
  // immediate list, in order, and are sent first next step; false then.
  bool SendStaged(int64_t now) {
    const size_t n = staged_.size();
    const bool live = live_ && n >= kLiveMinBatch;
    liveIdx_.clear();
    size_t i = 0;
    for (; i < n; i++) {
      uint32_t idx = staged_[i];
      const FrameMeta& m = meta_[idx];
      if (live && m.len <= kLiveDataMax && liveIdx_.size() < liveBatch_ && LiveUsable(ports_[m.egress], now)) {
        LiveSlot& slot = static_cast<LiveSlot*>(liveSlots_)[liveIdx_.size()];
        slot.len = m.len;
        slot.ifindex = ports_[m.egress].ifindex;
        std::memcpy(slot.data, static_cast<const char*>(umem_) + m.addr, m.len);
        liveIdx_.push_back(idx);
        continue;
      }
      if (!EmitSocket(idx, now)) break;
    }
    if (!liveIdx_.empty()) SendLive(now);
    if (i == n) return true;
    // Requeue the rest at the front of the immediate list, keeping their order.
    uint32_t head = immediate_.head;
    for (size_t j = n; j-- > i;) {
      meta_[staged_[j]].next = head;
      head = staged_[j];
    }
    if (immediate_.head == kNil) {
      uint32_t tail = head;
      while (meta_[tail].next != kNil) tail = meta_[tail].next;
      immediate_.tail = tail;
    }
    immediate_.head = head;
    return false;
  }

  // One BPF_PROG_RUN in live-frames mode over the slots written for liveIdx_ (bpf/delay_tx.h).
  void SendLive(int64_t now) {
    const uint32_t k = static_cast<uint32_t>(liveIdx_.size());
    liveCtl_->next = 0;
    liveCtl_->count = k;
    const uint64_t failedBefore = __atomic_load_n(&liveCtl_->failed, __ATOMIC_RELAXED);
    struct xdp_md md = {};
    uint8_t templ[64] = {};  // the kernel's frames start as this; the program rewrites them
    md.ingress_ifindex = kLiveIngressIfindex;
    md.data_end = sizeof templ;  // the kernel insists on data_end == data_size_in
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = templ, .data_size_in = sizeof templ, .ctx_in = &md,
                .ctx_size_in = sizeof md, .repeat = static_cast<int>(k), .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
    int err = bpf_prog_test_run_opts(liveProgFd_, &opts) ? errno : 0;
    // Disarmed between calls: other runs of the program with the loopback device as ingress
    // (golden-packet tests) must not take slots.
    liveCtl_->count = 0;
    Bump(counters_.liveCalls);
    if (err) {
      // The kernel refused the call (nothing was sent): these frames are lost, and a refusal that
      // will not go away turns the live path off; the sockets carry on alone.
      Bump(counters_.txErrors);
      Bump(counters_.txDropped, k);
      liveError_.store(err, std::memory_order_relaxed);
      if (err != EINTR && err != EAGAIN && err != ENOMEM) {
        live_ = false;
        liveOn_.store(false, std::memory_order_relaxed);
      }
    } else {
      uint64_t failed = __atomic_load_n(&liveCtl_->failed, __ATOMIC_RELAXED) - failedBefore;
      failed = std::min<uint64_t>(failed, k);
      Bump(counters_.txDropped, failed);
      Bump(counters_.liveTransmitted, k - failed);
      for (uint32_t idx : liveIdx_) Sent(meta_[idx], now);
      // The program could not make `failed` of them (it cannot, for frames checked as these
      // are): which ones is not known, so only the totals are corrected.
      if (failed) counters_.transmitted.store(counters_.transmitted.load(std::memory_order_relaxed) - failed, std::memory_order_relaxed);
    }
    for (uint32_t idx : liveIdx_) freeFrames_.push_back(idx);
    liveIdx_.clear();
  }

  // Immediate frames first (reordered, overflow passed), then everything due, at most kTxBatch
  // a step. False if frames that are due were left for the next step.
  bool TransmitDue(int64_t now) {
    staged_.clear();
    staged_.reserve(kTxBatch);
    bool all = true;
    while (!immediate_.empty()) {
      uint32_t idx = immediate_.head;
      if (!Stage(idx, now)) {
        all = false;
        break;
      }
      immediate_.head = meta_[idx].next;
      if (immediate_.head == kNil) immediate_.tail = kNil;
    }
    if (all) all = wheel_.PopDue(now, [&](uint32_t idx) { return Stage(idx, now); });
    if (staged_.empty()) return all;
    return SendStaged(now) && all;
  }

  // Returns false when a TX ring still holds descriptors the kernel has not taken; sets
  // txStalled_ when a kick found the kernel unable to take any.
  bool SubmitAndKick() {
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
      if (__atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) == *s.tx.producer) {
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
          // EAGAIN also ends every call that used its budget; only a kick that took nothing
          // while nothing came back means the kernel is stalled (send buffer full of skbs in
          // flight).
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
      drained &= port.txError != 0 || __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) == *s.tx.producer;
    }
    return drained;
  }

  // close(): frames still in the RX rings and every held frame leave at once, in due order.
  void Flush() {
    int64_t deadline = MonoNs() + kFlushDeadlineNs;
    uint64_t before = counters_.transmitted.load(std::memory_order_relaxed);
    ReceiveAll(MonoNs());
    flushing_ = true;
    bool done = false;
    while (!done) {
      DrainCompletions();
      for (Port& port : ports_) RefillFill(port);
      done = TransmitDue(INT64_MAX / 2) && wheel_.size() == 0 && immediate_.empty();
      SubmitAndKick();
      if (MonoNs() > deadline) break;
      if (!done) usleep(50);
    }
    uint64_t flushed = counters_.transmitted.load(std::memory_order_relaxed) - before;
    uint64_t left = wheel_.size();
    for (uint32_t idx = immediate_.head; idx != kNil; idx = meta_[idx].next) left++;
    Bump(counters_.flushedAtClose, flushed);
    Bump(counters_.droppedAtClose, left);
    // Give the kernel a moment to send what sits in the TX rings before the sockets close.
    while (MonoNs() < deadline) {
      bool pending = false;
      for (Port& port : ports_) pending |= port.txOutstanding > 0;
      if (!pending) break;
      SubmitAndKick();
      DrainCompletions();
      usleep(50);
    }
    inFlight_.store(0, std::memory_order_relaxed);
  }

  // ----- JS surface ---------------------------------------------------------------------------
  static Napi::Value IfIndex(const Napi::CallbackInfo& info) {
    std::string name = ArgString(info, 0);
    unsigned idx = if_nametoindex(name.c_str());
    if (idx == 0) ThrowErrno(info.Env(), "if_nametoindex(" + name + ")", errno ? errno : ENODEV);
    return Napi::Number::New(info.Env(), idx);
  }

  void CheckOpen(Napi::Env env, const char* op) {
    if (closed_) throw Napi::Error::New(env, std::string("DelayLine.") + op + ": the delay line is closed");
  }

  Napi::Value JsStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "start");
    if (thread_.joinable()) return env.Undefined();
    for (Socket& s : sockets_) {
      int fd = s.fd;
      // NOEXIST: a slot that holds a socket belongs to another delay line; the kernel empties
      // the slot of a socket that closes, so nothing stale can block it.
      if (bpf_map_update_elem(mapFd_, &s.key, &fd, BPF_NOEXIST)) {
        int err = errno;
        for (Socket& t : sockets_) {
          if (t.inMap) bpf_map_delete_elem(mapFd_, &t.key);
          t.inMap = false;
        }
        ThrowErrno(env, "bpf_map_update_elem(xskmap key " + std::to_string(s.key) + " for " + ports_[s.port].ifname +
                            " class " + std::to_string(s.cls) + ")", err);
      }
      s.inMap = true;
    }
    thread_ = std::thread([this] { Run(); });
    if (cpu_ >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu_, &set);
      int err = pthread_setaffinity_np(thread_.native_handle(), sizeof set, &set);
      if (err) {
        stop_.store(true, std::memory_order_release);
        Wake();
        thread_.join();
        Close();
        ThrowErrno(env, "pthread_setaffinity_np(delay line thread, CPU " + std::to_string(cpu_) + ")", err);
      }
    }
    return env.Undefined();
  }

  // setParams(classId, delayNs, jitterNs, distribution, delayRho, duplicate, duplicateRho,
  //           reorder, reorderRho, reorderGap); probabilities as thresholds (0..2^32), rho 0..2^32-1
  Napi::Value JsSetParams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "setParams");
    uint32_t c = ArgUint(info, 0);
    if (c >= classes_) throw Napi::RangeError::New(env, "DelayLine.setParams: class out of range");
    ClassParams p;
    p.delayNs = info[1].As<Napi::Number>().Int64Value();
    p.jitterNs = info[2].As<Napi::Number>().Int64Value();
    p.distribution = ArgUint(info, 3);
    p.delayRho = ArgUint(info, 4);
    p.duplicate = static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value());
    p.duplicateRho = ArgUint(info, 6);
    p.reorder = static_cast<uint64_t>(info[7].As<Napi::Number>().Int64Value());
    p.reorderRho = ArgUint(info, 8);
    p.reorderGap = std::max<uint32_t>(ArgUint(info, 9), 1);
    {
      std::lock_guard<std::mutex> lock(controlMutex_);
      pendingParams_[c] = p;
      controlGen_.fetch_add(1, std::memory_order_acq_rel);
    }
    Wake();
    return env.Undefined();
  }

  Napi::Value JsSetSeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "setSeed");
    bool lossless;
    uint64_t seed = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
    {
      std::lock_guard<std::mutex> lock(controlMutex_);
      pendingSeed_ = seed;
      pendingSeedGen_++;
      controlGen_.fetch_add(1, std::memory_order_acq_rel);
    }
    Wake();
    return env.Undefined();
  }

  struct KernelCounters {
    uint64_t rxDropped = 0, rxInvalid = 0, txInvalid = 0, rxRingFull = 0, fillRingEmpty = 0, txRingEmpty = 0;
  };

  KernelCounters KernelStats() const {
    if (kernelSaved_) return kernelAtClose_;
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

  Napi::Value JsStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto num = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    auto load = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    Napi::Object o = Napi::Object::New(env);
    o.Set("received", num(load(counters_.received)));
    o.Set("transmitted", num(load(counters_.transmitted)));
    o.Set("overflow", num(load(counters_.overflow)));
    o.Set("duplicated", num(load(counters_.duplicated)));
    o.Set("duplicateSkipped", num(load(counters_.duplicateSkipped)));
    o.Set("reordered", num(load(counters_.reordered)));
    o.Set("txErrors", num(load(counters_.txErrors)));
    o.Set("txDropped", num(load(counters_.txDropped)));
    o.Set("lateDropped", num(load(counters_.lateDropped)));
    o.Set("flushedAtClose", num(load(counters_.flushedAtClose)));
    o.Set("droppedAtClose", num(load(counters_.droppedAtClose)));
    o.Set("inFlight", num(inFlight_.load(std::memory_order_relaxed)));
    o.Set("latenessMaxNs", num(latenessMax_.load(std::memory_order_relaxed)));
    o.Set("realtime", Napi::Boolean::New(env, realtimeActive_.load(std::memory_order_relaxed)));
    o.Set("cpu", Napi::Number::New(env, cpu_));
    o.Set("txBudget", num(ports_.empty() ? 32 : ports_[0].txBudget));
    o.Set("live", Napi::Boolean::New(env, liveOn_.load(std::memory_order_relaxed)));
    o.Set("liveCalls", num(load(counters_.liveCalls)));
    o.Set("liveTransmitted", num(load(counters_.liveTransmitted)));
    o.Set("liveErrno", Napi::Number::New(env, liveError_.load(std::memory_order_relaxed)));
    Napi::Array classes = Napi::Array::New(env, classes_);
    for (uint32_t c = 0; c < classes_; c++) {
      Napi::Object co = Napi::Object::New(env);
      co.Set("received", num(load(classReceived_[c])));
      co.Set("transmitted", num(load(classTransmitted_[c])));
      co.Set("overflow", num(load(classOverflow_[c])));
      classes.Set(c, co);
    }
    o.Set("classes", classes);
    // Lateness histogram: [lowNs, highNs, count] for each non-empty bucket.
    Napi::Array hist = Napi::Array::New(env);
    uint32_t n = 0;
    for (unsigned i = 0; i < kLatenessBuckets; i++) {
      uint64_t count = load(lateness_[i]);
      if (!count) continue;
      Napi::Array b = Napi::Array::New(env, 3);
      b.Set(0u, num(LatenessBucketLow(i)));
      b.Set(1u, num(i + 1 < kLatenessBuckets ? LatenessBucketLow(i + 1) : UINT64_MAX));
      b.Set(2u, num(count));
      hist.Set(n++, b);
    }
    o.Set("lateness", hist);
    KernelCounters k = KernelStats();
    Napi::Object ko = Napi::Object::New(env);
    ko.Set("rxDropped", num(k.rxDropped));
    ko.Set("rxInvalidDescs", num(k.rxInvalid));
    ko.Set("txInvalidDescs", num(k.txInvalid));
    ko.Set("rxRingFull", num(k.rxRingFull));
    ko.Set("fillRingEmpty", num(k.fillRingEmpty));
    ko.Set("txRingEmpty", num(k.txRingEmpty));
    o.Set("kernel", ko);
    return o;
  }

  // recordDelays(capacity): from now on keep the delay drawn for each delayed frame, up to
  // capacity samples (0 stops). Earlier samples are discarded.
  Napi::Value JsRecordDelays(const Napi::CallbackInfo& info) {
    uint32_t capacity = ArgUint(info, 0);
    std::lock_guard<std::mutex> lock(recordMutex_);
    recordDelays_.clear();
    recordClasses_.clear();
    recordDelays_.reserve(capacity);
    recordClasses_.reserve(capacity);
    recordCapacity_ = capacity;
    recording_.store(capacity > 0, std::memory_order_relaxed);
    return info.Env().Undefined();
  }

  // takeDelays() -> { classes: Uint8Array, delaysNs: Float64Array }; empties the record.
  Napi::Value JsTakeDelays(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> lock(recordMutex_);
    size_t n = recordDelays_.size();
    auto delays = Napi::Float64Array::New(env, n);
    auto classes = Napi::Uint8Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      delays[i] = static_cast<double>(recordDelays_[i]);
      classes[i] = recordClasses_[i];
    }
    recordDelays_.clear();
    recordClasses_.clear();
    Napi::Object o = Napi::Object::New(env);
    o.Set("classes", classes);
    o.Set("delaysNs", delays);
    return o;
  }

  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    Close();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("flushed", Napi::Number::New(info.Env(), static_cast<double>(counters_.flushedAtClose.load())));
    o.Set("dropped", Napi::Number::New(info.Env(), static_cast<double>(counters_.droppedAtClose.load())));
    return o;
  }

  Napi::Value JsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), closed_); }

  // ----- state --------------------------------------------------------------------------------
  // Configuration (fixed after construction).
  uint32_t classes_ = 1, frames_ = 0, frameSize_ = 2048, frameShift_ = 11, ringSize_ = 2048, maxInFlight_ = 0;
  bool overflowPass_ = false;
  int64_t spinNs_ = 0;
  bool realtime_ = false;
  int64_t maxLateNs_ = INT64_MAX;
  int cpu_ = -1;  // the CPU the thread is pinned to, -1: any
  int mapFd_ = -1, eventFd_ = -1;
  int liveProgFd_ = -1, ifFd_ = -1;
  void* liveSlots_ = MAP_FAILED;
  size_t liveSlotsLen_ = 0;
  LiveCtl* liveCtl_ = nullptr;
  size_t liveCtlLen_ = 0;
  uint32_t liveBatch_ = 0;
  void* umem_ = MAP_FAILED;
  size_t umemLen_ = 0;
  std::vector<Port> ports_;
  std::vector<Socket> sockets_;
  bool closed_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Thread-owned.
  std::vector<FrameMeta> meta_;
  std::vector<uint32_t> freeFrames_;
  TimingWheel wheel_;
  FrameList immediate_;
  bool flushing_ = false;
  bool txStalled_ = false;
  std::vector<uint32_t> staged_;   // this step's due frames, in order
  std::vector<uint32_t> liveIdx_;  // those written into the live slots
  bool live_ = false;              // the live path is set up and has not been refused
  std::array<ClassState, kDelayClassesMax> cls_;
  uint32_t seenControlGen_ = 0;
  uint64_t seenSeedGen_ = 0;

  // JS -> thread.
  std::mutex controlMutex_;
  std::atomic<uint32_t> controlGen_{0};
  std::array<ClassParams, kDelayClassesMax> pendingParams_;
  uint64_t pendingSeed_ = 0;
  uint64_t pendingSeedGen_ = 0;

  // Thread -> JS.
  Counters counters_;
  std::array<std::atomic<uint64_t>, kDelayClassesMax> classReceived_{}, classTransmitted_{}, classOverflow_{};
  std::array<std::atomic<uint64_t>, kLatenessBuckets> lateness_{};
  std::atomic<uint64_t> latenessMax_{0};
  std::atomic<uint64_t> inFlight_{0};
  std::atomic<bool> realtimeActive_{false};
  std::atomic<bool> liveOn_{false};
  std::atomic<int> liveError_{0};
  KernelCounters kernelAtClose_;
  bool kernelSaved_ = false;
  std::mutex recordMutex_;
  std::atomic<bool> recording_{false};
  size_t recordCapacity_ = 0;
  std::vector<int64_t> recordDelays_;
  std::vector<uint8_t> recordClasses_;
};

}  // namespace

void InitDelayLine(Napi::Env env, Napi::Object exports) { exports.Set("DelayLine", DelayLine::Define(env)); }

}  // namespace bae
