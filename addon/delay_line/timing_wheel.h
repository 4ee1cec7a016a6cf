// The timing wheel that holds delayed frames until they are due, and the per-frame bookkeeping it
// links them through. Header-only: Insert and PopDue run once per frame, and PopDue takes the
// thread's emit step as a template argument so that the compiler can inline both sides.
// Thread-owned: only the delay-line thread touches a wheel.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace bae::delay {

constexpr uint32_t kNil = UINT32_MAX;

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

}  // namespace bae::delay
