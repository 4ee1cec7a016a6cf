// AF_XDP plumbing of the delay line: the sockets, their rings and the one UMEM they share.
//
// One UMEM for every port, so a frame received on port A is transmitted on port B without a copy.
// Each port gets one socket per delay class, all bound to queue 0 in copy mode (veth refuses
// zero-copy). The class-0 socket of a port owns the port's fill and completion rings and its TX
// ring; the other classes' sockets share that buffer pool (same device and queue) and only
// receive. The socket a frame arrives on therefore names its class: the XDP program chooses the
// class by choosing the XSKMAP slot (metadata is not delivered reliably in copy mode). libxdp's
// xsk_socket__create_shared always shares with the first socket of the UMEM, which the kernel
// refuses for a second socket on another device's queue, so the sockets are set up here with the
// raw socket options (xsk.cc); xsk.h supplies the ring helpers.
//
// These are plain records; the Line (line.h) owns them, the JS thread sets them up, the
// delay-line thread drives the rings and, when the line closes, releases them.
#pragma once
#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <xdp/xsk.h>

#include <cstdint>
#include <string>

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

namespace bae::delay {

// What copy-mode sendto() transmits per call without XDP_MAX_TX_SKB_BUDGET (the kernel's default).
constexpr uint32_t kDefaultTxBudget = 32;

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
  size_t txSocket = 0;  // index into the line's sockets of the class-0 socket
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  MappedRing fillMap, compMap;
  uint32_t txReserved = 0;                // descriptors written in this step, not yet submitted
  uint32_t txBudget = kDefaultTxBudget;   // descriptors one sendto() may transmit
  uint64_t txOutstanding = 0;             // submitted, completion not seen yet
  int txError = 0;                        // errno of the last failed kick (port down, gone), 0 when it works
  int64_t txErrorAt = 0;                  // when that kick failed
  bool up = true;                         // IFF_UP and IFF_RUNNING when last read (live path only)
  int64_t upCheckedAt = 0;                // monotonic time: 0 is long enough ago to read it at once
};

// Fills in xsk.h's ring view of a ring the kernel mapped at `map` (xsk.cc).
void SetRing(void* map, const xdp_ring_offset& off, uint32_t size, bool producer, xsk_ring_prod* prod,
             xsk_ring_cons* cons);

// Whether the kernel has taken every descriptor of a TX ring.
inline bool TxRingIdle(const Socket& s) { return __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) == *s.tx.producer; }

// The kernel's XDP_STATISTICS, summed over a line's sockets.
struct KernelCounters {
  uint64_t rxDropped = 0, rxInvalid = 0, txInvalid = 0, rxRingFull = 0, fillRingEmpty = 0, txRingEmpty = 0;
};

}  // namespace bae::delay
