// The delay line's decisions per frame, as netem makes them: random numbers (PCG32, one stream per
// class), netem's correlation, the jitter distributions (netem's tables), and the parameters and
// state of one delay class. Nothing here knows about sockets or time: the thread loop
// (thread.cc) asks a class for a decision and a delay, so that the same seed and frame sequence
// give the same decisions whatever the machine does.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace bae::delay {

// PCG32 (O'Neill), one stream per class so that a class's decisions depend only on the seed and
// that class's frame sequence.
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

// Jitter distributions as netem defines them: a table of 4096 quantiles of a unit distribution,
// one picked by a (correlated) random number, delay = mu + sigma * table[index]. netem takes the
// index (and the uniform offset) modulo the table size, which throws away the correlation it has
// just computed; here the random number maps monotonically (top 12 bits, or scaling for
// uniform), so that a correlated random number gives a correlated delay. The codes are
// DISTRIBUTION_CODES of src/emulation/jitter.ts.
enum Distribution : uint32_t { kUniform = 0, kNormal = 1, kPareto = 2, kParetoNormal = 3 };
constexpr uint32_t kTableSize = 4096;
constexpr int kTableShift = 32 - 12;  // top 12 bits of a 32-bit random number index the table
// netem's tables are int16 in units of 1/8192: a quantile is clamped to +-32767/8192.
constexpr double kTableClamp = 32767.0 / 8192.0;

struct DistTables {
  std::array<double, kTableSize> normal, pareto, paretonormal;
};

// Computed once, on first use (netem.cc).
const DistTables& Tables();

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

// The decision state of one class: its parameters, random stream and correlations.
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

  bool DrawDuplicate() { return p.duplicate && duplicateCor.Draw(rng, p.duplicateRho) < p.duplicate; }

  // netem's reorder: after gap-1 delayed frames, a frame skips the delay with probability p.
  // Counts the frame as delayed when it does not skip.
  bool DrawReorder() {
    if (p.reorder && reorderCounter + 1 >= p.reorderGap && reorderCor.Draw(rng, p.reorderRho) < p.reorder) {
      reorderCounter = 0;
      return true;
    }
    reorderCounter++;
    return false;
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

}  // namespace bae::delay
