// SPDX-License-Identifier: GPL-2.0
/* Bench fixture: bae_core (no policy stage) with one shared profile copy per conversation
 * updated by atomic adds instead of per-CPU copies, so bench/prog-ns.ts can measure the choice. */
#define BAE_PROFILE_SHARED
#define BAE_NO_POLICY
#include "bae.bpf.c"
