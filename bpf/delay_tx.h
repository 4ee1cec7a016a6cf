/* The delay line's transmitter (addon/delay_line/live_tx.cc, docs/emulation.md).
 *
 * AF_XDP in copy mode transmits through an skb per frame: about 1 us each on this kind of
 * machine. So the delay-line thread sends a batch of due frames differently: it writes them
 * into dl_tx_slots (a memory-mapped array), sets dl_tx_ctl, and runs the XDP program that feeds
 * the delay line with BPF_PROG_RUN in live-frames mode, once per frame, with the loopback device
 * as the ingress device. That program starts with
 *
 *	if (ctx->ingress_ifindex == DL_TX_INGRESS_IFINDEX && (act = dl_tx_frame(ctx)) >= 0)
 *		return act;
 *
 * and each run takes the next slot, makes the kernel's frame that slot's length and content and
 * redirects it to the slot's egress port: the frames leave as XDP frames, the way an XDP bridge
 * forwards, with no skb. The program must be one that is attached to a device (the ports): a
 * BPF_PROG_RUN with repeat > 1 of a program that is not adds it to the kernel's XDP dispatcher
 * and removes it again, a grace period (~25 ms here) per call.
 *
 * Real traffic never takes the branch: the program is never attached to the loopback device
 * (the delay line refuses it as a port). BPF_PROG_RUN without a context also runs with the
 * loopback device as ingress (golden-packet tests do): those runs find no batch armed in
 * dl_tx_ctl (count is 0 outside the thread's call) and go on as any packet.
 *
 * The slot and control structs and their bounds (DL_TX_*) are shared with the addon, so they
 * live in bae.h; this file holds only what the kernel alone uses: the maps and dl_tx_frame().
 */
#ifndef BAE_DELAY_TX_H
#define BAE_DELAY_TX_H

#include "bae.h"

/* dl_tx_frame(): not a run of the delay line's call, process the packet as usual. */
#define DL_TX_NOT_MINE (-1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, DL_TX_SLOTS);
	__type(key, __u32);
	__type(value, struct dl_tx_slot);
} dl_tx_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dl_tx_ctl);
} dl_tx_ctl SEC(".maps");

static __always_inline int dl_tx_frame(struct xdp_md *ctx)
{
	__u32 zero = 0, i, len;
	struct dl_tx_ctl *c = bpf_map_lookup_elem(&dl_tx_ctl, &zero);
	struct dl_tx_slot *s;
	long cur;

	if (!c)
		return DL_TX_NOT_MINE;
	i = c->next;
	if (i >= c->count)
		return DL_TX_NOT_MINE; /* no batch armed */
	c->next = i + 1;
	s = bpf_map_lookup_elem(&dl_tx_slots, &i);
	if (!s)
		goto fail;
	len = s->len;
	if (len < 14 || len > DL_TX_DATA_MAX)
		goto fail;
	cur = (long)ctx->data_end - (long)ctx->data;
	if (cur != len && bpf_xdp_adjust_tail(ctx, (int)len - (int)cur))
		goto fail;
	if (bpf_xdp_store_bytes(ctx, 0, s->data, len))
		goto fail;
	return bpf_redirect(s->ifindex, 0);
fail:
	c->failed++;
	return XDP_DROP;
}

#endif /* BAE_DELAY_TX_H */
