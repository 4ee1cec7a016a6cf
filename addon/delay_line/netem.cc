// netem's jitter tables, computed from their definitions (netem.h says how they are used). The
// tables are those iproute2 ships (normal.dist, pareto.dist, paretonormal.dist), here at the
// midpoint of each 1/4096 probability step and clamped like the int16 tables; the continuous
// definitions the tests check them against are in src/emulation/jitter.ts.
#include "netem.h"

namespace bae::delay {
namespace {

// Bisection steps for the normal quantile: 80 halvings of [-10, 10] are far below a double's
// resolution at any quantile the table holds.
constexpr int kQuantileSteps = 80;
constexpr double kQuantileRange = 10;

double NormalQuantile(double p) {
  double lo = -kQuantileRange, hi = kQuantileRange;
  for (int i = 0; i < kQuantileSteps; i++) {
    double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

// Pareto with shape 3 and scale 1 (mean 1.5), shifted to mean 0 and scaled by 4/3 (netem).
double ParetoQuantile(double p) { return (std::pow(1.0 - p, -1.0 / 3.0) - 1.5) * (4.0 / 3.0); }

}  // namespace

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

}  // namespace bae::delay
