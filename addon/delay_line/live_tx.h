// The delay line's XDP transmitter (bpf/delay_tx.h, docs/emulation.md "Transmission").
//
// Copy-mode AF_XDP builds an skb per frame inside sendto(), about 1 us each. When the caller
// gives the XDP program that feeds the line and a step has at least kLiveMinBatch frames to send,
// the thread writes them into that program's dl_tx_slots array (memory-mapped here), sets
// dl_tx_ctl, and runs the program once per frame with BPF_PROG_RUN in live-frames mode; the
// program redirects each to its egress port as an XDP frame, without an skb. That is 4-5 times
// cheaper per frame but costs ~15 us per call, so small batches (a lightly loaded line) keep
// the socket.
//
// The slot and control layouts are struct dl_tx_slot and struct dl_tx_ctl of bpf/bae.h, the
// header the BPF side compiles with: nothing is restated here. The maps are checked against them
// when the line opens, so an object built from another bae.h is refused, not misread.
//
// This class owns the mappings and the program's descriptor, and makes the calls; the thread
// (line.h) decides which frames go this way and counts them.
#pragma once
#include <napi.h>

#include <cstdint>

#include "bpf/bae.h"
#include "xsk.h"

namespace bae::delay {

// A step sends through the live path only with at least this many frames: a BPF_PROG_RUN call
// costs ~15 us before its first frame (a page pool made and torn down), the socket ~1 us a frame.
constexpr uint32_t kLiveMinBatch = 16;
// How often the live path re-reads a port's link state: an XDP redirect to a port that is down
// fails without telling the caller, so frames for a port found down take the socket path, which
// notices and counts.
constexpr int64_t kLinkCheckNs = 1'000'000;

class LiveTx {
 public:
  LiveTx() = default;
  LiveTx(const LiveTx&) = delete;
  LiveTx& operator=(const LiveTx&) = delete;
  ~LiveTx() { Release(); }

  // JS thread, before the line starts: checks the two arrays against bpf/bae.h and maps them.
  // `batchMax` bounds the frames of one call (the thread's TX batch). Throws; nothing is left
  // open then.
  void Open(Napi::Env env, int progFd, int slotsFd, int ctlFd, uint32_t batchMax);
  void Release();

  // Thread-owned from here on.
  bool on() const { return on_; }
  uint32_t capacity() const { return capacity_; }
  dl_tx_slot& Slot(uint32_t i) { return slots_[i]; }

  // Whether `port` is up and running, re-read at most every kLinkCheckNs.
  bool LinkUp(Port& port, int64_t now) {
    if (now - port.upCheckedAt >= kLinkCheckNs) ReadLink(port, now);
    return port.up;
  }

  struct Outcome {
    int err;          // errno of a refused call (nothing sent), 0 when the call ran
    uint64_t failed;  // runs whose frame the program could not make (the call ran)
    bool turnedOff;   // the refusal will not go away: the path is off for good
  };
  // One BPF_PROG_RUN in live-frames mode over slots 0..count-1.
  Outcome Send(uint32_t count);

 private:
  void ReadLink(Port& port, int64_t now);

  int progFd_ = -1;
  int ifFd_ = -1;  // a socket to ask for link state on
  dl_tx_slot* slots_ = nullptr;
  size_t slotsLen_ = 0;
  dl_tx_ctl* ctl_ = nullptr;
  size_t ctlLen_ = 0;
  uint32_t capacity_ = 0;
  bool on_ = false;  // set up and not refused
};

}  // namespace bae::delay
