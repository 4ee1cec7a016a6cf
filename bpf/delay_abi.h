/* SPDX-License-Identifier: GPL-2.0 */
/*
 * delay_abi.h: the delay section of bae.h, what the delay-class actions and the delay line's
 * transmitter (delay_tx.h, addon/delay_line/) share. Included by bae.h after the policy section;
 * include bae.h, not this file.
 */
#ifndef BAE_DELAY_ABI_H
#define BAE_DELAY_ABI_H

/* ---- delay-class actions (delay, duplicate, reorder) ----------------------------------------
 * Owned by the agent (src/agent/, docs/agent.md). Inline mode only. A packet whose deciding rule
 * is on and has a delay_class goes to map bae_xsks at key ingress ifindex * POLICY_DELAY_CLASSES
 * + class, where the agent's delay line (addon/delay_line/) holds it and sends it on the other
 * port; with no socket in the slot it is forwarded as usual and counted. Class 0 is "no delay":
 * the classes of a policy set are 1..POLICY_DELAY_CLASSES - 1 (src/policy/compile.ts). */
enum policy_delay_bounds {
	POLICY_DELAY_CLASSES = 8, /* XSKMAP slots per port */
};

/* Map policy_delay_stats (PERCPU_ARRAY, one entry). */
struct policy_delay_stats {
	__u64 redirected; /* packets handed to the delay line */
	__u64 no_socket;  /* packets of a delay class forwarded undelayed: no agent holds the slot */
};

/* ==== end of the policy engine section ======================================================= */

/* ==== the delay line's transmitter ===========================================================
 * Kernel side: bpf/delay_tx.h (the maps dl_tx_slots and dl_tx_ctl, and dl_tx_frame(), which the
 * program that feeds the delay line runs first). User space: the addon's delay line
 * (addon/delay_line/live_tx.cc) includes this header, checks the maps' value sizes against these
 * structs when a line opens, and writes a batch of frames into the memory-mapped slots before
 * each BPF_PROG_RUN; src/emulation/delay-line.ts only names the maps. docs/emulation.md,
 * "Transmission", describes the path.
 */
enum dl_tx_bounds {
	/* The ingress device of the delay line's BPF_PROG_RUN calls, by which dl_tx_frame() knows
	 * them: every namespace's loopback device has ifindex 1. */
	DL_TX_INGRESS_IFINDEX = 1,
	/* Frames per BPF_PROG_RUN call: the thread's TX batch (kTxBatch, addon/delay_line/line.h). */
	DL_TX_SLOTS = 256,
	/* Longest frame this path sends: a live frame is one page holding the kernel's frame header,
	 * XDP's 256 bytes of headroom and the tailroom an skb would need; 3072 bytes fit with room
	 * to spare. Longer frames (4096-byte UMEM frames hold up to 3840) leave through the socket. */
	DL_TX_DATA_MAX = 3072,
};

/* Map dl_tx_slots (ARRAY, BPF_F_MMAPABLE, DL_TX_SLOTS entries): the frames of one call. */
struct dl_tx_slot {
	__u32 len;
	__u32 ifindex; /* egress */
	__u8 data[DL_TX_DATA_MAX];
};

/* Map dl_tx_ctl (ARRAY, BPF_F_MMAPABLE, one entry): where the current call is. */
struct dl_tx_ctl {
	__u32 next;   /* slot of the next run; the thread sets it to 0 before each call */
	__u32 count;  /* slots filled for this call; 0 outside it */
	__u64 failed; /* runs whose frame could not be made (the thread counts them as dropped) */
};

#endif /* BAE_DELAY_ABI_H */
