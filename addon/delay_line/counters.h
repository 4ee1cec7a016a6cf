// What the delay-line thread tells the JS thread: its counters, the lateness histogram, the
// clock they are measured with. One writer (the thread), any number of readers (stats() on the
// JS thread), so every field is a relaxed atomic that only the thread stores to.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <ctime>

#include "../delay_line.h"

namespace bae::delay {

inline int64_t MonoNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Single writer (the delay-line thread), many readers: a plain load/store pair is enough and
// avoids a locked instruction per frame.
inline void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

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

// Everything stats() reports that the thread counts.
struct Counters {
  std::atomic<uint64_t> received{0}, transmitted{0}, overflow{0}, duplicated{0}, duplicateSkipped{0},
      reordered{0}, txErrors{0}, txDropped{0}, lateDropped{0}, flushedAtClose{0}, droppedAtClose{0}, liveCalls{0},
      liveTransmitted{0};
  std::array<std::atomic<uint64_t>, kDelayClassesMax> classReceived{}, classTransmitted{}, classOverflow{};
  std::array<std::atomic<uint64_t>, kLatenessBuckets> lateness{};
  std::atomic<uint64_t> latenessMax{0};
  std::atomic<uint64_t> inFlight{0};
  std::atomic<bool> realtime{false};  // whether the kernel granted SCHED_FIFO
  std::atomic<bool> live{false};      // whether the XDP transmitter is on
  std::atomic<int> liveErrno{0};      // errno of its last refused call
};

}  // namespace bae::delay
