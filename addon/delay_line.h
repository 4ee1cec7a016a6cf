// The AF_XDP delay line: frames that the XDP program redirects into an XSKMAP are held by a
// native thread in a timing wheel and transmitted on the egress port when due (docs/emulation.md).
// Its parts are under delay_line/ (addon/README.md lists them); this header is what the rest of
// the addon sees. Mirrored by src/emulation/native.ts (the native surface) and
// src/emulation/delay-line.ts.
#pragma once
#include <napi.h>

#include "bpf/bae.h"

namespace bae {

// Bounds shared with the TypeScript wrapper (src/emulation/delay-line.ts checks them first).
// XSKMAP key = ingress ifindex * kDelayClassesMax + class: the policy engine's delay classes.
constexpr unsigned kDelayClassesMax = POLICY_DELAY_CLASSES;
constexpr unsigned kDelayPortsMax = 16;  // ports of one delay line

void InitDelayLine(Napi::Env env, Napi::Object exports);

}  // namespace bae
