// SPDX-License-Identifier: GPL-2.0
/* Bench fixture: the bae program with one shared profile copy per conversation updated by
 * atomic adds instead of per-CPU copies, so bench/prog-ns.ts can measure the choice. */
#define BAE_PROFILE_SHARED
#include "bae.bpf.c"
