/* SPDX-License-Identifier: GPL-2.0 */
/*
 * actions_edit.h: the emulation actions that change a packet's bytes: truncate, corrupt and
 * tcp-flags, each with the checksums it leaves right or wrong on purpose (docs/policies.md).
 * Called by actions_modify() (actions.h).
 */
#ifndef BAE_ACTIONS_EDIT_H
#define BAE_ACTIONS_EDIT_H

#include "actions_bytes.h"
#include "actions_state.h"

/* ---- truncate ------------------------------------------------------------------------------ */

/* Scratch for the cut bytes: bpf_csum_diff sums at most 512 bytes a call, in whole words. */
#define ACTIONS_SUM_CHUNK 512
#define ACTIONS_SUM_CHUNKS 8 /* cuts of up to 4096 bytes; beyond, the L4 checksum stays stale */

struct actions_scratch {
	__u8 buf[ACTIONS_SUM_CHUNK * ACTIONS_SUM_CHUNKS + 8];
	__u8 corrupt[64]; /* struct actions_corrupt_state (corrupt's state) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct actions_scratch);
} actions_scratch SEC(".maps");

/*
 * Ones' complement sum of the bytes [off, end) as 16-bit big-endian words from off, or -1 when
 * they are more than ACTIONS_SUM_CHUNKS chunks. bpf_csum_diff sums native-order words: on a
 * little-endian CPU that is the byte-swapped sum, swapped back at the end. Verifier: not
 * inlined, so that its frame and the corrupt callback's are not on the stack together.
 */
static __noinline __s64 actions_sum_bytes(struct xdp_md *ctx, __u32 off, __u32 end)
{
	struct actions_scratch *sc;
	__u32 zero = 0, n;
	__s64 sum = 0;

	if (end <= off)
		return 0;
	if (end - off > ACTIONS_SUM_CHUNK * ACTIONS_SUM_CHUNKS)
		return -1;
	sc = bpf_map_lookup_elem(&actions_scratch, &zero);
	if (!sc)
		return -1;
#pragma unroll
	for (int k = 0; k < ACTIONS_SUM_CHUNKS; k++) {
		__u8 *chunk = sc->buf + k * ACTIONS_SUM_CHUNK;

		if (off >= end)
			break;
		n = end - off;
		if (n > ACTIONS_SUM_CHUNK)
			n = ACTIONS_SUM_CHUNK;
		/* Verifier: a length in 1..ACTIONS_SUM_CHUNK (unchanged for those). */
		n = ((n - 1) & (ACTIONS_SUM_CHUNK - 1)) + 1;
		/* The bytes after an odd tail count as zero. */
		*(__u32 *)(chunk + (n & ~3U)) = 0;
		if (bpf_xdp_load_bytes(ctx, off, chunk, n))
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)chunk, (n + 3) & ~3U, (__u32)sum);
		if (sum < 0)
			return -1;
		off += n;
	}
	n = actions_fold((__u32)sum);
	return bpf_ntohs(n);
}

/*
 * Cuts the frame to `cut` bytes. With fix, when the L4 header survives: the IP length (and the
 * IPv4 header checksum), the UDP length and the L4 checksum (the cut bytes taken out, the
 * pseudo-header length replaced) describe what is left; otherwise they stay as they were.
 */
static __always_inline void actions_truncate(struct xdp_md *ctx, struct actions_pkt *m,
					     const struct policy_emul *e, __u32 l4_hdr)
{
	__u32 len = m->frame_len, cut, ip_end, old_end, new_end, csum_off;
	__u16 from, to;
	int udp = m->parse == BAE_PARSE_UDP;

	if (e->truncate_mode == POLICY_TRUNCATE_TO)
		cut = e->truncate_len;
	else
		cut = len >= ACTIONS_FRAME_MIN + e->truncate_len ? len - e->truncate_len : ACTIONS_FRAME_MIN;
	if (cut < ACTIONS_FRAME_MIN)
		cut = ACTIONS_FRAME_MIN;
	if (cut >= len)
		return;
	ip_end = m->ip_end > 0 ? m->ip_end : 0;
	old_end = ip_end < len ? ip_end : len;
	new_end = ip_end < cut ? ip_end : cut;
	if (e->truncate_fix && cut >= m->l4_off + l4_hdr && new_end < ip_end) {
		/* IP length */
		if (m->family == AF_INET) {
			from = ip_end - m->l3_off;
			to = new_end - m->l3_off;
			actions_store16(ctx, m->l3_off + 2, to);
			actions_csum_fix(ctx, m, m->l3_off + 10, from, to, 0);
		} else {
			from = ip_end - m->l3_off - 40;
			to = new_end - m->l3_off - 40;
			actions_store16(ctx, m->l3_off + 4, to);
		}
		csum_off = actions_l4_csum_off(m);
		if (actions_l4_csum_on(ctx, m)) {
			__u16 csum;

			__s64 cut_sum = actions_sum_bytes(ctx, new_end, old_end);

			/* the cut starts at an odd offset of the segment */
			if (cut_sum >= 0 && ((new_end - m->l4_off) & 1))
				cut_sum = ((cut_sum & 0xFF) << 8) | ((cut_sum >> 8) & 0xFF);
			from = ip_end - m->l4_off;
			to = new_end - m->l4_off;
			if (cut_sum >= 0 && !actions_load16(ctx, csum_off, &csum)) {
				__u32 s = (__u16)~csum;

				s += (__u16)~cut_sum;
				if (actions_has_pseudo(m))
					s += (__u16)~from + (__u32)to;
				if (udp)
					s += (__u16)~from + (__u32)to;
				csum = ~actions_fold(s) & 0xFFFF;
				if (udp && csum == 0)
					csum = 0xFFFF;
				actions_store16(ctx, csum_off, csum);
			}
		}
		if (udp)
			actions_store16(ctx, m->l4_off + 4, new_end - m->l4_off);
		m->ip_end = new_end;
	}
	if (bpf_xdp_adjust_tail(ctx, (int)cut - (int)len) == 0)
		m->frame_len = cut;
}

/* ---- corrupt ------------------------------------------------------------------------------- */

/*
 * Bytes corrupt leaves alone when it fixes checksums: the checksums themselves, and the fields
 * whose change no checksum can carry because they change what the packet is (IP version and
 * header length, IPv4 total length, flags and fragment offset, protocol / next header, IPv6
 * payload length and extension headers, TCP data offset, UDP length). As bit masks of the byte
 * offset in the header (offsets below 64).
 */
#define ACTIONS_SPARE_IPV4 ((1ULL << 0) | (1ULL << 2) | (1ULL << 3) | (1ULL << 6) | (1ULL << 7) | \
			    (1ULL << 9) | (1ULL << 10) | (1ULL << 11))
#define ACTIONS_SPARE_IPV6 ((1ULL << 0) | (1ULL << 4) | (1ULL << 5) | (1ULL << 6))
#define ACTIONS_SPARE_IPV6_FROM 40 /* extension headers */
#define ACTIONS_SPARE_TCP ((1ULL << 12) | (1ULL << 16) | (1ULL << 17))
#define ACTIONS_SPARE_UDP ((1ULL << 4) | (1ULL << 5) | (1ULL << 6) | (1ULL << 7))
#define ACTIONS_SPARE_ICMP ((1ULL << 2) | (1ULL << 3))
/* Draws corrupt makes for one bit before it gives that bit up (all hit spared or chosen bits):
 * with at least half of a region usable, a bit is lost with probability below 2^-64. */
#define ACTIONS_CORRUPT_DRAWS 64

static __always_inline int actions_spared(const struct actions_pkt *m, __u32 b)
{
	__u64 mask;
	__u32 rel;

	if (b < m->l4_off) {
		rel = b - m->l3_off;
		if (m->family != AF_INET && rel >= ACTIONS_SPARE_IPV6_FROM)
			return 1;
		mask = m->family == AF_INET ? ACTIONS_SPARE_IPV4 : ACTIONS_SPARE_IPV6;
	} else {
		rel = b - m->l4_off;
		mask = m->parse == BAE_PARSE_TCP ? ACTIONS_SPARE_TCP :
		       m->parse == BAE_PARSE_UDP ? ACTIONS_SPARE_UDP : ACTIONS_SPARE_ICMP;
	}
	return rel < 64 && ((mask >> rel) & 1);
}

/* Corrupt's state, in the per-CPU scratch (the stack has no room left at this depth). */
struct actions_corrupt_state {
	__u32 lo;      /* region start (frame offset) */
	__u32 nbits;   /* region length in bits */
	__u32 bits;    /* bits to flip */
	__u32 i;       /* bits done (flipped or given up) */
	__u32 draws;   /* draws made for bit i */
	__u32 fix;
	__u32 l4_csum; /* the L4 checksum is kept (actions_l4_csum_on) */
	__u32 chosen[POLICY_CORRUPT_BITS_MAX]; /* positions flipped; ~0 unused */
};

struct actions_corrupt_loop {
	struct xdp_md *ctx;
	struct actions_pkt *m;
	struct policy_act_state *st;
	struct actions_corrupt_state *c;
};

/* Checksums after the byte at b went from `from` to `to`. */
static __always_inline void actions_corrupt_fix(struct actions_corrupt_loop *l, __u32 b, __u8 from,
						__u8 to)
{
	struct actions_pkt *m = l->m;
	__u32 rel = b - m->l3_off, odd = rel & 1; /* l4_off - l3_off is even */

	if (m->family == AF_INET && b < m->l4_off)
		actions_csum_fix(l->ctx, m, m->l3_off + 10, actions_byte_word(from, odd),
				 actions_byte_word(to, odd), 0);
	if (!l->c->l4_csum)
		return;
	if ((b >= m->l4_off && (__s32)b < m->ip_end) ||
	    (actions_has_pseudo(m) &&
	     (m->family == AF_INET ? rel >= 12 && rel < 20 : rel >= 8 && rel < 40)))
		actions_csum_fix(l->ctx, m, actions_l4_csum_off(m), actions_byte_word(from, odd),
				 actions_byte_word(to, odd), m->parse == BAE_PARSE_UDP);
}

/*
 * One draw: a random bit position of the region; taken when it is not spared (when fixing) and
 * not chosen before, else drawn again, at most ACTIONS_CORRUPT_DRAWS times for one bit (then
 * that bit is given up). Position p is bit 7 - p % 8 of byte lo + p / 8. Verifier: one draw per
 * callback, and the "chosen before" test is arithmetic, not eight branches.
 */
static long actions_corrupt_step(__u32 n, void *data)
{
	struct actions_corrupt_loop *l = data;
	struct actions_corrupt_state *c = l->c;
	__u32 b, pos, dup = 0;
	__u8 from, to;

	if (c->i >= c->bits || c->i >= POLICY_CORRUPT_BITS_MAX || c->nbits == 0)
		return 1;
	pos = actions_random(l->st) % c->nbits;
#pragma unroll
	for (int k = 0; k < POLICY_CORRUPT_BITS_MAX; k++) {
		__u32 x = c->chosen[k] ^ pos;

		dup |= ((x | -x) >> 31) ^ 1; /* 1 when x == 0 */
	}
	if (dup || (c->fix && actions_spared(l->m, c->lo + pos / 8))) {
		if (++c->draws >= ACTIONS_CORRUPT_DRAWS) {
			c->i++;
			c->draws = 0;
		}
		return 0;
	}
	c->chosen[c->i & (POLICY_CORRUPT_BITS_MAX - 1)] = pos;
	c->i++;
	c->draws = 0;
	b = c->lo + pos / 8;
	if (bpf_xdp_load_bytes(l->ctx, b, &from, 1))
		return 0;
	to = from ^ (0x80 >> (pos & 7));
	bpf_xdp_store_bytes(l->ctx, b, &to, 1);
	if (c->fix)
		actions_corrupt_fix(l, b, from, to);
	return 0;
}

static __always_inline void actions_corrupt(struct xdp_md *ctx, struct actions_pkt *m,
					    const struct policy_emul *e, struct policy_act_state *st,
					    __u32 l4_hdr)
{
	struct actions_corrupt_loop l = { .ctx = ctx, .m = m, .st = st };
	struct actions_corrupt_state *c;
	struct actions_scratch *sc;
	__u32 end = m->frame_len, lo = m->l3_off, hi, zero = 0;

	if (m->ip_end >= 0 && (__u32)m->ip_end < end)
		end = m->ip_end;
	hi = end;
	if (e->corrupt_region == POLICY_REGION_IP) {
		hi = m->l4_off;
	} else if (e->corrupt_region == POLICY_REGION_TRANSPORT) {
		lo = m->l4_off;
		hi = m->l4_off + l4_hdr;
	} else if (e->corrupt_region == POLICY_REGION_PAYLOAD) {
		lo = m->l4_off + l4_hdr;
	}
	if (hi > end)
		hi = end;
	if (lo >= hi)
		return;
	sc = bpf_map_lookup_elem(&actions_scratch, &zero);
	if (!sc)
		return;
	c = (void *)sc->corrupt;
	c->lo = lo;
	c->nbits = (hi - lo) * 8;
	c->bits = e->corrupt_bits;
	c->i = 0;
	c->draws = 0;
	c->fix = e->corrupt_fix;
	c->l4_csum = c->fix && actions_l4_csum_on(ctx, m);
#pragma unroll
	for (int k = 0; k < POLICY_CORRUPT_BITS_MAX; k++)
		c->chosen[k] = ~0U;
	l.c = c;
	bpf_loop(POLICY_CORRUPT_BITS_MAX * ACTIONS_CORRUPT_DRAWS, actions_corrupt_step, &l, 0);
}

/* ---- tcp-flags ----------------------------------------------------------------------------- */

static __always_inline void actions_tcp_flags(struct xdp_md *ctx, struct actions_pkt *m,
					      const struct policy_emul *e)
{
	__u32 off = m->l4_off + 13;
	__u8 from, to;

	if (m->parse != BAE_PARSE_TCP || m->l4_off + 18 > m->frame_len)
		return;
	if (bpf_xdp_load_bytes(ctx, off, &from, 1))
		return;
	to = (from | e->tcp_set) & ~e->tcp_clear;
	if (to == from)
		return;
	bpf_xdp_store_bytes(ctx, off, &to, 1);
	actions_csum_fix(ctx, m, m->l4_off + 16, from, to, 0); /* byte 13: the low half of a word */
}

#endif /* BAE_ACTIONS_EDIT_H */
