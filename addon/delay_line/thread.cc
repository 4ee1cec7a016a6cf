// The delay line's life and its thread: start, the loop (receive, decide, hold, transmit when
// due, sleep until the next due time), the flush and release when asked to stop, and the
// hand-over of parameters from the JS thread. line.h says who owns what.
#include <bpf/bpf.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "../common.h"
#include "line.h"

namespace bae::delay {
namespace {

// close(): held frames are transmitted at once; whatever has not left after this long is dropped.
constexpr int64_t kFlushDeadlineNs = 200'000'000;
// How long the flush waits between rounds while the kernel works through the TX rings.
constexpr useconds_t kFlushPollUs = 50;
// SCHED_FIFO priority of the thread when real-time scheduling is asked for: the lowest band,
// above every normal task, below the kernel's own real-time threads.
constexpr int kRealtimePriority = 10;
// The thread re-checks a full TX ring this often instead of sleeping until the next due time.
constexpr int64_t kTxRetryNs = 20'000;
// Wake at the due time, not up to the default 50 us of timer slack later.
constexpr unsigned long kTimerSlackNs = 1;

}  // namespace

Line::Line(const Config& config)
    : cfg_(config), frameShift_(config.frameSize == 4096 ? 12 : 11), wheel_(meta_) {}

Line::~Line() {
  RequestStop(nullptr);
  Join();
}

// ----- lifecycle (JS thread) ------------------------------------------------------------------

int Line::Start(Napi::Env env) {
  if (thread_.joinable()) return 0;  // started already
  for (Socket& s : sockets_) {
    int fd = s.fd;
    // NOEXIST: a slot that holds a socket belongs to another delay line; the kernel empties the
    // slot of a socket that closes, so nothing stale can block it.
    if (bpf_map_update_elem(mapFd_, &s.key, &fd, BPF_NOEXIST)) {
      int err = errno;
      RemoveFromMap();
      ThrowErrno(env, "bpf_map_update_elem(xskmap key " + std::to_string(s.key) + " for " + ports_[s.port].ifname +
                          " class " + std::to_string(s.cls) + ")", err);
    }
    s.inMap = true;
  }
  thread_ = std::thread([this] { Main(); });
  if (cfg_.cpu < 0) return 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cfg_.cpu, &set);
  return pthread_setaffinity_np(thread_.native_handle(), sizeof set, &set);
}

void Line::RequestStop(std::function<void()> onFinished) {
  if (stopRequested_) return;
  stopRequested_ = true;
  if (!opened_) {
    // Nothing was opened (Open threw and cleaned up): nothing to flush or release.
    if (onFinished) onFinished();
    return;
  }
  onFinished_ = std::move(onFinished);
  // Stop steering frames here first; the thread then flushes what it holds.
  RemoveFromMap();
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) {
    Wake();
    return;
  }
  // Never started: a thread still does the release, which waits for the kernel.
  try {
    thread_ = std::thread([this] { Main(); });
  } catch (const std::system_error&) {
    // No thread to be had: release here rather than not at all (nothing is held to flush).
    Flush();
    Finish();
  }
}

void Line::Join() {
  if (thread_.joinable()) thread_.join();
  CloseJsDescriptors();
  joined_ = true;
}

// ----- JS -> thread ---------------------------------------------------------------------------

void Line::SetParams(uint32_t classId, const ClassParams& p) {
  {
    std::lock_guard<std::mutex> lock(controlMutex_);
    pendingParams_[classId] = p;
    controlGen_.fetch_add(1, std::memory_order_acq_rel);
  }
  Wake();
}

void Line::SetSeed(uint64_t seed) {
  {
    std::lock_guard<std::mutex> lock(controlMutex_);
    pendingSeed_ = seed;
    pendingSeedGen_++;
    controlGen_.fetch_add(1, std::memory_order_acq_rel);
  }
  Wake();
}

void Line::RecordDelays(uint32_t capacity) {
  std::lock_guard<std::mutex> lock(recordMutex_);
  recordDelays_.clear();
  recordClasses_.clear();
  recordDelays_.reserve(capacity);
  recordClasses_.reserve(capacity);
  recordCapacity_ = capacity;
  recording_.store(capacity > 0, std::memory_order_relaxed);
}

void Line::TakeDelays(const DelaySink& take) {
  std::lock_guard<std::mutex> lock(recordMutex_);
  take(recordDelays_, recordClasses_);
  // clear() keeps the capacity reserved by RecordDelays: the thread never allocates here.
  recordDelays_.clear();
  recordClasses_.clear();
}

void Line::ApplyControl() {
  uint32_t gen = controlGen_.load(std::memory_order_acquire);
  if (gen == seenControlGen_) return;
  std::lock_guard<std::mutex> lock(controlMutex_);
  for (uint32_t c = 0; c < cfg_.classes; c++) cls_[c].p = pendingParams_[c];
  if (pendingSeedGen_ != seenSeedGen_) {
    for (uint32_t c = 0; c < cfg_.classes; c++) cls_[c].Reseed(pendingSeed_, c);
    seenSeedGen_ = pendingSeedGen_;
  }
  seenControlGen_ = gen;
}

// ----- the thread -----------------------------------------------------------------------------

void Line::Main() {
  pthread_setname_np(pthread_self(), "bae-delayline");
  if (!stop_.load(std::memory_order_acquire)) {
    prctl(PR_SET_TIMERSLACK, kTimerSlackNs);
    // A low real-time priority: a woken delay line runs at once instead of waiting for a busy
    // CPU's time slice (milliseconds of lateness otherwise). The kernel's RT throttling still
    // leaves other tasks 5% of the CPU if frames never stop. Refused without CAP_SYS_NICE.
    if (cfg_.realtime) {
      struct sched_param sp = {};
      sp.sched_priority = kRealtimePriority;
      counters_.realtime.store(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0, std::memory_order_relaxed);
    }
    Loop();
  }
  Flush();
  Finish();
}

void Line::Loop() {
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
    counters_.inFlight.store(wheel_.size(), std::memory_order_relaxed);
    if (received) continue;

    int64_t next = immediate_.empty() ? wheel_.NextDue() : now;
    int64_t wait = next == INT64_MAX ? INT64_MAX : next - MonoNs();
    for (const Port& port : ports_)
      if (port.txError) wait = std::min(wait, kTxErrorRetryNs);
    int64_t spin = cfg_.spinNs;
    if (txStalled_) {
      // The kernel took nothing from a TX ring: copy mode waits for the receiving veth to free
      // its skbs, work that runs in softirq context on this CPU, which this real-time thread
      // would starve if it spun. Sleep briefly instead.
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
}

// The decisions for one received frame, in netem's order: duplicate, queue limit, reorder, delay.
void Line::OnFrame(const Socket& s, uint64_t addr, uint32_t len, int64_t now) {
  ClassState& cs = cls_[s.cls];
  Bump(counters_.received);
  Bump(counters_.classReceived[s.cls]);
  uint32_t idx = static_cast<uint32_t>(addr >> frameShift_);
  meta_[idx] = FrameMeta{now, addr, len, kNil, ports_[s.port].egress, s.cls};

  if (cs.DrawDuplicate()) {
    if (freeFrames_.empty()) {
      Bump(counters_.duplicateSkipped);
    } else {
      uint32_t copy = freeFrames_.back();
      freeFrames_.pop_back();
      uint64_t copyAddr = (static_cast<uint64_t>(copy) << frameShift_) | (addr & (cfg_.frameSize - 1));
      std::memcpy(static_cast<char*>(umem_) + copyAddr, static_cast<char*>(umem_) + addr, len);
      meta_[copy] = FrameMeta{now, copyAddr, len, kNil, ports_[s.port].egress, s.cls};
      Bump(counters_.duplicated);
      Schedule(cs, copy, now);
    }
  }
  Schedule(cs, idx, now);
}

void Line::Schedule(ClassState& cs, uint32_t idx, int64_t now) {
  if (wheel_.size() >= cfg_.maxInFlight) {
    Bump(counters_.overflow);
    Bump(counters_.classOverflow[meta_[idx].cls]);
    if (cfg_.overflowPass) PushImmediate(idx);
    else freeFrames_.push_back(idx);
    return;
  }
  if (cs.DrawReorder()) {
    Bump(counters_.reordered);
    PushImmediate(idx);
    return;
  }
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

void Line::PushImmediate(uint32_t idx) {
  meta_[idx].next = kNil;
  if (immediate_.empty()) immediate_.head = idx; else meta_[immediate_.tail].next = idx;
  immediate_.tail = idx;
}

// Takes one due frame into this step's batch; false when the batch is full (the frame stays
// where it is). A frame too late to be worth sending is dropped here.
bool Line::Stage(uint32_t idx, int64_t now) {
  if (staged_.size() >= kTxBatch) return false;
  if (now - meta_[idx].due > cfg_.maxLateNs && !flushing_) {
    // Stale: the line fell behind (more frames due than it can transmit). Sending this frame
    // would only make every later one later too; drop it, as a queue that overflows would.
    freeFrames_.push_back(idx);
    Bump(counters_.lateDropped);
    return true;
  }
  staged_.push_back(idx);
  return true;
}

// Sends this step's batch: as XDP frames when the batch is big enough and the frame and its
// port allow it, through the egress socket otherwise. Frames the TX rings cannot take now go
// back to the front of the immediate list, in order, and are sent first next step; false then.
bool Line::SendStaged(int64_t now) {
  const size_t n = staged_.size();
  const bool live = live_.on() && n >= kLiveMinBatch;
  liveIdx_.clear();
  size_t i = 0;
  for (; i < n; i++) {
    uint32_t idx = staged_[i];
    const FrameMeta& m = meta_[idx];
    if (live && m.len <= DL_TX_DATA_MAX && liveIdx_.size() < live_.capacity() && LiveUsable(ports_[m.egress], now)) {
      dl_tx_slot& slot = live_.Slot(static_cast<uint32_t>(liveIdx_.size()));
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

// Immediate frames first (reordered, overflow passed), then everything due, at most kTxBatch a
// step. False if frames that are due were left for the next step.
bool Line::TransmitDue(int64_t now) {
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

// Stop requested: frames still in the RX rings and every held frame leave at once, in due order.
void Line::Flush() {
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
    if (!done) usleep(kFlushPollUs);
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
    usleep(kFlushPollUs);
  }
  counters_.inFlight.store(0, std::memory_order_relaxed);
}

// The thread's last act: keep the sockets' statistics, release every kernel object, report.
void Line::Finish() {
  {
    std::lock_guard<std::mutex> lock(kernelMutex_);
    kernelAtClose_ = ReadKernelCounters();
    kernelSaved_ = true;
  }
  ReleaseKernel();
  if (onFinished_) onFinished_();
}

}  // namespace bae::delay
