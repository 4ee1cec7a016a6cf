// SPDX-License-Identifier: GPL-2.0
/* Bench fixture: the bae program without the policy stage, so bench/prog-ns.ts can tell the
 * datapath's own per-packet cost from the policy stage's. */
#define BAE_NO_POLICY
#include "bae.bpf.c"
