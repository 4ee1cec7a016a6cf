// One delay line: what it owns, which thread may touch what, and the steps of its thread. The
// JS wrapper (js.cc) holds one Line; the other files of this directory define its methods by
// concern: the AF_XDP rings (xsk.cc), the thread's loop and its close (thread.cc), the XDP
// transmitter (live_tx.cc). Decisions (netem.h) and the wheel (timing_wheel.h) are separate
// classes it holds.
//
// Threads: the JS thread opens, starts, changes parameters, reads stats and asks the line to
// stop. The delay-line thread owns the rings, the wheel and the decision state; parameters reach
// it through a mutex-guarded copy and a generation counter, counters leave it through relaxed
// atomics it alone writes (counters.h). On a stop request the thread flushes what it holds,
// releases the sockets and the UMEM itself (closing an AF_XDP socket waits for an RCU grace
// period, several per line), and reports through the callback it was given: the JS thread only
// joins a thread that has already finished.
#pragma once
#include <napi.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../delay_line.h"
#include "counters.h"
#include "live_tx.h"
#include "netem.h"
#include "timing_wheel.h"
#include "xsk.h"

namespace bae::delay {

// Frames taken from one RX ring per step: twice what a busy step transmits (kTxBatch), so that
// a burst is absorbed while TX is busy, but a source far faster than the line is held back by
// the kernel (rxRingFull) instead of costing the thread ~0.1 us a frame to take in frames it
// could only shed later (overflow, lateDropped).
constexpr uint32_t kRxBatch = 512;
// Frames handed to one port's TX ring per step. Copy-mode transmission happens inside sendto()
// at about 1 us a frame (skb, copy, and the receiving veth's work), so this bounds the time one
// step spends away from the RX rings: a step never leaves them unread for much more than 256 us.
// It is also the most frames one XDP-transmitter call takes (DL_TX_SLOTS in bpf/bae.h).
constexpr uint32_t kTxBatch = 256;
// A port whose kicks fail (down, gone) is retried this often.
constexpr int64_t kTxErrorRetryNs = 1'000'000;

class Line {
 public:
  // Fixed when the line opens; checked in TypeScript (src/emulation/delay-line.ts).
  struct Config {
    uint32_t classes = 1;
    uint32_t frames = 0;
    uint32_t frameSize = 2048;  // 2048 or 4096
    uint32_t ringSize = 2048;   // a power of two
    uint32_t maxInFlight = 0;
    bool overflowPass = false;
    int64_t spinNs = 0;
    bool realtime = false;
    int64_t maxLateNs = INT64_MAX;
    int cpu = -1;  // the CPU the thread is pinned to, -1: any
  };
  struct PortSpec {
    std::string ifname;
    uint16_t egress = 0;          // index of the port its frames leave on
    std::vector<uint32_t> keys;   // XSKMAP slot of each class's socket
  };
  // The XDP transmitter (live_tx.h); -1 descriptors: transmit through the sockets only.
  struct TransmitSpec {
    int programFd = -1, slotsFd = -1, controlFd = -1;
  };

  explicit Line(const Config& config);
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  // The last resort: a line nobody stopped is stopped and joined here.
  ~Line();

  // ----- JS thread (xsk.cc, thread.cc) ---------------------------------------------------------
  // Opens the UMEM, the sockets and the transmitter. Throws with nothing left open.
  void Open(Napi::Env env, int xskMapFd, const std::vector<PortSpec>& ports, const TransmitSpec& transmit);
  // Puts the sockets into the XSKMAP (throws, with none left there, when a slot is taken) and
  // starts the thread. Returns the errno of pinning it to its CPU, 0 when that worked or was
  // not asked for; the caller stops the line then.
  int Start(Napi::Env env);
  // Takes the sockets out of the XSKMAP (frames then take the XDP program's fallback) and has the
  // thread flush what it holds, release the sockets and the UMEM, and call `onFinished` from the
  // thread as its last act. Never waits. Only the first request counts.
  void RequestStop(std::function<void()> onFinished);
  // Waits for the thread to end; at once when it already reported. Closes what the JS thread
  // used. Idempotent.
  void Join();
  bool stopRequested() const { return stopRequested_; }
  bool joined() const { return joined_; }

  void SetParams(uint32_t classId, const ClassParams& p);
  void SetSeed(uint64_t seed);
  void RecordDelays(uint32_t capacity);
  // Hands the delays recorded so far (and the class of each) to `take`, then forgets them.
  using DelaySink = std::function<void(const std::vector<int64_t>& delaysNs, const std::vector<uint8_t>& classes)>;
  void TakeDelays(const DelaySink& take);

  const Counters& counters() const { return counters_; }
  KernelCounters KernelStats();  // the sockets' now, or as they were when they closed
  uint32_t classes() const { return cfg_.classes; }
  int cpu() const { return cfg_.cpu; }
  uint32_t txBudget() const { return ports_.empty() ? kDefaultTxBudget : ports_[0].txBudget; }

 private:
  // ----- setup and teardown (xsk.cc) ----------------------------------------------------------
  void OpenSocket(Napi::Env env, uint32_t p, uint32_t c, uint32_t key);
  void RemoveFromMap();
  void ReleaseKernel();        // sockets, rings, UMEM, transmitter
  void CloseJsDescriptors();   // the XSKMAP and the eventfd, which the JS thread uses
  KernelCounters ReadKernelCounters() const;
  void Wake();

  // ----- the rings (xsk.cc) -------------------------------------------------------------------
  uint32_t DrainCompletions();  // recycles what the kernel has transmitted; returns how many
  void RefillFill(Port& port);
  bool ReceiveAll(int64_t now);
  bool EmitSocket(uint32_t idx, int64_t now);
  bool SubmitAndKick();

  // ----- the thread (thread.cc) ---------------------------------------------------------------
  void Main();
  void Loop();
  void ApplyControl();
  void OnFrame(const Socket& s, uint64_t addr, uint32_t len, int64_t now);
  void Schedule(ClassState& cs, uint32_t idx, int64_t now);
  void PushImmediate(uint32_t idx);
  bool Stage(uint32_t idx, int64_t now);
  bool SendStaged(int64_t now);
  bool TransmitDue(int64_t now);
  void Flush();
  void Finish();
  bool LiveUsable(Port& port, int64_t now) {
    return live_.LinkUp(port, now) && port.txReserved == 0 && TxRingIdle(sockets_[port.txSocket]);
  }

  // ----- the XDP transmitter (live_tx.cc) -----------------------------------------------------
  void SendLive(int64_t now);

  // Counts one frame that left: transmitted, and how late (not when close() sends it early).
  void Sent(const FrameMeta& m, int64_t now) {
    Bump(counters_.transmitted);
    Bump(counters_.classTransmitted[m.cls]);
    if (flushing_) return;
    int64_t late = now - m.due;
    Bump(counters_.lateness[LatenessBucket(late > 0 ? static_cast<uint64_t>(late) : 0)]);
    if (late > 0 && static_cast<uint64_t>(late) > counters_.latenessMax.load(std::memory_order_relaxed))
      counters_.latenessMax.store(static_cast<uint64_t>(late), std::memory_order_relaxed);
  }

  // ----- configuration and resources (set up on the JS thread before the thread starts) ------
  const Config cfg_;
  const uint32_t frameShift_;
  int mapFd_ = -1, eventFd_ = -1;
  void* umem_ = MAP_FAILED;
  size_t umemLen_ = 0;
  std::vector<Port> ports_;
  std::vector<Socket> sockets_;
  LiveTx live_;
  bool opened_ = false;

  // ----- lifecycle ----------------------------------------------------------------------------
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool stopRequested_ = false;         // JS thread
  bool joined_ = false;                // JS thread
  std::function<void()> onFinished_;   // written before stop_ is set, read by the thread after

  // ----- thread-owned -------------------------------------------------------------------------
  std::vector<FrameMeta> meta_;
  std::vector<uint32_t> freeFrames_;
  TimingWheel wheel_;
  FrameList immediate_;
  bool flushing_ = false;
  bool txStalled_ = false;
  std::vector<uint32_t> staged_;   // this step's due frames, in order
  std::vector<uint32_t> liveIdx_;  // those written into the transmitter's slots
  std::array<ClassState, kDelayClassesMax> cls_;
  uint32_t seenControlGen_ = 0;
  uint64_t seenSeedGen_ = 0;

  // ----- JS -> thread -------------------------------------------------------------------------
  std::mutex controlMutex_;
  std::atomic<uint32_t> controlGen_{0};
  std::array<ClassParams, kDelayClassesMax> pendingParams_;
  uint64_t pendingSeed_ = 0;
  uint64_t pendingSeedGen_ = 0;

  // ----- thread -> JS -------------------------------------------------------------------------
  Counters counters_;
  // The sockets' XDP_STATISTICS: read live until the thread closes them, then this copy, which
  // the thread takes under the mutex before it does.
  std::mutex kernelMutex_;
  KernelCounters kernelAtClose_;
  bool kernelSaved_ = false;
  std::mutex recordMutex_;
  std::atomic<bool> recording_{false};
  size_t recordCapacity_ = 0;
  std::vector<int64_t> recordDelays_;
  std::vector<uint8_t> recordClasses_;
};

}  // namespace bae::delay
