/* SPDX-License-Identifier: GPL-2.0 */
/*
 * actions_bytes.h: what the modifying emulation actions (actions.h) need of a packet: its offsets,
 * byte access through the helpers, and incremental checksum updates (RFC 1624).
 */
#ifndef BAE_ACTIONS_BYTES_H
#define BAE_ACTIONS_BYTES_H

#include "bae.h"
#include "parsing.h"

/*
 * What the modifying actions need of the packet, scalars only: actions_modify() is a global
 * function, which the verifier checks once on its own. Verifier: inlined into the policy stage,
 * its branches multiply with every path of the parser and the budget runs out.
 */
struct actions_pkt {
	__u32 frame_len;
	__s32 ip_end;
	__u16 l3_off;
	__u16 l4_off;
	__u8 parse;
	__u8 family;
	__u8 pad[2];
};

/* Byte access through the helpers: offsets are computed, and a field cut off by truncate simply
 * fails (the caller then leaves it). */
static __always_inline int actions_load16(struct xdp_md *ctx, __u32 off, __u16 *v)
{
	__u8 b[2];

	if (bpf_xdp_load_bytes(ctx, off, b, 2))
		return -1;
	*v = (__u16)b[0] << 8 | b[1];
	return 0;
}

static __always_inline void actions_store16(struct xdp_md *ctx, __u32 off, __u16 v)
{
	__u8 b[2] = { v >> 8, v & 0xFF };

	bpf_xdp_store_bytes(ctx, off, b, 2);
}

static __always_inline __u32 actions_fold(__u32 s)
{
	s = (s & 0xFFFF) + (s >> 16);
	return (s & 0xFFFF) + (s >> 16);
}

/* RFC 1624 eq. 3: a checksum after a 16-bit quantity went from `from` to `to`. */
static __always_inline __u16 actions_csum_replace(__u16 csum, __u16 from, __u16 to)
{
	return ~actions_fold((__u16)~csum + (__u16)~from + (__u32)to) & 0xFFFF;
}

/* A byte's contribution to a checksum: the high half of a word at an even offset from the
 * checksum's start, the low half at an odd one. */
static __always_inline __u16 actions_byte_word(__u8 v, __u32 odd)
{
	return odd ? v : (__u16)v << 8;
}

/* Offset of the L4 checksum; 0 for protocols without one we keep. */
static __always_inline __u32 actions_l4_csum_off(const struct actions_pkt *m)
{
	if (m->parse == BAE_PARSE_TCP)
		return m->l4_off + 16;
	if (m->parse == BAE_PARSE_UDP)
		return m->l4_off + 6;
	return m->l4_off + 2; /* ICMP, ICMPv6 */
}

/* TCP, UDP and ICMPv6 checksums cover the pseudo-header (addresses, length, protocol). */
static __always_inline int actions_has_pseudo(const struct actions_pkt *m)
{
	return m->parse != BAE_PARSE_ICMP;
}

/* Replaces the checksum at `off` after a quantity it covers went from `from` to `to`; a UDP
 * checksum never becomes 0 (that means "none" over IPv4). */
static __always_inline void actions_csum_fix(struct xdp_md *ctx, const struct actions_pkt *m, __u32 off,
					     __u16 from, __u16 to, int udp)
{
	__u16 csum;

	if (actions_load16(ctx, off, &csum))
		return;
	csum = actions_csum_replace(csum, from, to);
	if (udp && csum == 0)
		csum = 0xFFFF;
	actions_store16(ctx, off, csum);
}

/* The L4 checksum is kept: present, and not a UDP-over-IPv4 "no checksum" 0. */
static __always_inline int actions_l4_csum_on(struct xdp_md *ctx, const struct actions_pkt *m)
{
	__u16 csum;

	if (actions_load16(ctx, actions_l4_csum_off(m), &csum))
		return 0;
	return !(m->parse == BAE_PARSE_UDP && m->family == AF_INET && csum == 0);
}

/* Header length of the L4 protocol: TCP data offset, UDP 8, ICMP/ICMPv6 4 (type, code, sum). */
static __always_inline __u32 actions_l4_hdr_len(struct xdp_md *ctx, const struct actions_pkt *m)
{
	__u8 doff;

	if (m->parse == BAE_PARSE_TCP) {
		if (bpf_xdp_load_bytes(ctx, m->l4_off + 12, &doff, 1))
			return 20;
		return (doff >> 4) * 4;
	}
	return m->parse == BAE_PARSE_UDP ? 8 : 4;
}

#endif /* BAE_ACTIONS_BYTES_H */
