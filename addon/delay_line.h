// The AF_XDP delay line: frames that the XDP program redirects into an XSKMAP are held by a
// native thread in a timing wheel and transmitted on the egress port when due (docs/emulation.md).
// Mirrored by src/emulation/native.ts (the native surface) and src/emulation/delay-line.ts.
#pragma once
#include <napi.h>

namespace bae {

// Bounds shared with the TypeScript wrapper (src/emulation/delay-line.ts checks them first).
constexpr unsigned kDelayClassesMax = 8;  // XSKMAP key = ingress ifindex * kDelayClassesMax + class
constexpr unsigned kDelayPortsMax = 16;   // ports of one delay line

void InitDelayLine(Napi::Env env, Napi::Object exports);

}  // namespace bae
