/* SPDX-License-Identifier: GPL-2.0 */
/*
 * actions.h: the emulation actions of the policy stage (loss, rate, truncate, corrupt,
 * tcp-flags). Included by policy.h; kernel only. Parameters are in policy_rule.emul (bae.h);
 * src/policy/emulation.ts is the same arithmetic in TypeScript (the reference model), and
 * test/policy/actions-differential.test.ts holds the two together byte for byte.
 *
 * Two steps, because the candidate loop (a bpf_loop callback) has no packet access:
 *   actions_decide() in the loop: rate, then loss; either may drop the packet;
 *   actions_modify() after the loop, with the packet: truncate, then corrupt, then tcp-flags.
 * Rate comes first so that a lost packet still spends its tokens, as on a real link where loss
 * happens after the bottleneck; truncate before corrupt so that corruption lands in what is
 * sent; tcp-flags last so that its incremental checksum update starts from the final bytes.
 *
 * Randomness: each rule has a splitmix64 sequence in policy_act_states, started from
 * emul.seed, and every draw is one step of it (the top 32 bits). Integer arithmetic only, so
 * user space predicts every decision. Two CPUs drawing for the same rule at once may both take
 * the same step: per-rule sequences are exact with one CPU (tests pin themselves), statistically
 * right otherwise.
 */
#ifndef BAE_ACTIONS_H
#define BAE_ACTIONS_H

#include "bae.h"
#include "parsing.h"

/* bpf_xdp_adjust_tail leaves at least an Ethernet header. */
#define ACTIONS_FRAME_MIN 14
#define ACTIONS_NS_PER_S 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_ACT_STATES_MAX);
	__type(key, struct policy_trigger_key);
	__type(value, struct policy_act_state);
} policy_act_states SEC(".maps");

/* One step of the rule's splitmix64 sequence; the top 32 bits. */
static __always_inline __u32 actions_random(struct policy_act_state *st)
{
	__u64 z = (st->prng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (z ^ (z >> 31)) >> 32;
}

/* An event of probability p (units of 2^-32): one draw. */
static __always_inline int actions_chance(struct policy_act_state *st, __u64 p)
{
	return (__u64)actions_random(st) < p;
}

/* The state under `key`, created on first use with the rule's seed and a full bucket. */
static __always_inline struct policy_act_state *actions_state_get(const struct policy_trigger_key *key,
								 const struct policy_rule *r, __u64 now,
								 struct policy_stats *stats)
{
	struct policy_act_state *st, fresh = {};

	st = bpf_map_lookup_elem(&policy_act_states, key);
	if (st)
		return st;
	fresh.prng = r->emul.seed;
	fresh.credit = r->emul.rate_cap;
	fresh.last_ns = now;
	bpf_map_update_elem(&policy_act_states, key, &fresh, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&policy_act_states, key);
	if (!st)
		stats->act_state_full++;
	return st;
}

/* The rule's state (scope POLICY) or its conversation's bucket (scope CONVERSATION). */
static __always_inline struct policy_act_state *actions_state(const struct policy_rule *r,
							     const struct pkt_meta *m, __u8 scope,
							     struct policy_stats *stats)
{
	struct policy_trigger_key key = { .id = r->id, .scope = scope };

	if (scope == POLICY_SCOPE_CONVERSATION) {
		key.family = m->family;
		__builtin_memcpy(key.addr_a, m->conv_key.addr_a, 16);
		__builtin_memcpy(key.addr_b, m->conv_key.addr_b, 16);
	}
	return actions_state_get(&key, r, m->now_ns, stats);
}

/*
 * Token bucket: the credit grows by rate_bps bit-ns per ns since the last refill, up to
 * rate_cap; a frame costs its length * 8e9. A frame the credit does not cover is dropped and
 * costs nothing. A clock step back refills nothing.
 */
static __always_inline int actions_rate_take(const struct policy_emul *e, struct policy_act_state *b,
					     const struct pkt_meta *m)
{
	__u64 cost = (__u64)m->frame_len * 8 * ACTIONS_NS_PER_S;
	__u64 now = m->now_ns;

	if (now > b->last_ns) {
		__u64 gap = now - b->last_ns;

		/* gap < rate_full_ns bounds gap * rate_bps by rate_cap: no overflow. */
		if (gap >= e->rate_full_ns) {
			b->credit = e->rate_cap;
		} else {
			b->credit += gap * e->rate_bps;
			if (b->credit > e->rate_cap)
				b->credit = e->rate_cap;
		}
		b->last_ns = now;
	}
	if (b->credit < cost)
		return 0;
	b->credit -= cost;
	return 1;
}

/* 1: the packet is lost. Random: with loss_corr the previous decision is repeated (one draw),
 * else a fresh one with loss_p (a second draw). Gilbert-Elliott: a loss draw with the state's
 * probability, then a transition draw. */
static __always_inline int actions_loss(const struct policy_emul *e, struct policy_act_state *st)
{
	int lost;

	if (e->loss_model == POLICY_LOSS_GILBERT) {
		lost = actions_chance(st, st->ge_bad ? e->loss_bad : e->loss_good);
		if (st->ge_bad)
			st->ge_bad = !actions_chance(st, e->loss_corr);
		else
			st->ge_bad = actions_chance(st, e->loss_p);
		return lost;
	}
	if (e->loss_corr && actions_chance(st, e->loss_corr))
		lost = st->loss_last;
	else
		lost = actions_chance(st, e->loss_p);
	st->loss_last = lost;
	return lost;
}

/*
 * In the candidate loop, for the rule that carries out the emulation: 1 drops the packet. The
 * rule's state it creates is the one corrupt draws from after the loop (actions_modify).
 * Verifier: a global function, checked once, not once per state of the candidate callback.
 */
__noinline int actions_decide(const struct policy_rule *r, const struct pkt_meta *m)
{
	struct policy_act_state *st, *bucket;
	struct policy_stats *stats;
	__u32 zero = 0;

	if (!r || !m) /* Verifier: a global function's pointers may be NULL. */
		return 0;
	if (!(r->action_mask & POLICY_EMUL_STATEFUL))
		return 0;
	stats = bpf_map_lookup_elem(&policy_stats, &zero);
	if (!stats) /* Verifier: a one-entry array, key 0 cannot miss. */
		return 0;
	st = actions_state(r, m, POLICY_SCOPE_POLICY, stats);
	if (!st)
		return 0;
	if (r->action_mask & (1 << POLICY_ACT_RATE)) {
		bucket = r->emul.rate_scope == POLICY_SCOPE_CONVERSATION ?
				 actions_state(r, m, POLICY_SCOPE_CONVERSATION, stats) : st;
		if (bucket && !actions_rate_take(&r->emul, bucket, m))
			return 1;
	}
	if (r->action_mask & (1 << POLICY_ACT_LOSS))
		return actions_loss(&r->emul, st);
	return 0;
}

/* ---- packet bytes and checksums ---------------------------------------------------------- */

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

/* After the candidate loop, for the rule that carries out the emulation and a packet that goes
 * on: the actions that change bytes, on packets whose L4 header parsed (TCP, UDP, ICMP). */
__noinline int actions_modify(struct xdp_md *ctx, struct actions_pkt *m, const struct policy_rule *r)
{
	struct policy_act_state *st = NULL;
	__u32 l4_hdr;

	if (!m || !r)
		return 0;
	if (m->parse > BAE_PARSE_ICMPV6 || !(r->action_mask & POLICY_EMUL_MODIFY))
		return 0;
	l4_hdr = actions_l4_hdr_len(ctx, m);
	if (r->action_mask & (1 << POLICY_ACT_TRUNCATE))
		actions_truncate(ctx, m, &r->emul, l4_hdr);
	/* The rule's state that actions_decide() made; none when the map had no room. */
	if (r->action_mask & (1 << POLICY_ACT_CORRUPT)) {
		struct policy_trigger_key key = { .id = r->id, .scope = POLICY_SCOPE_POLICY };

		st = bpf_map_lookup_elem(&policy_act_states, &key);
	}
	if (st && actions_chance(st, r->emul.corrupt_p))
		actions_corrupt(ctx, m, &r->emul, st, l4_hdr);
	if (r->action_mask & (1 << POLICY_ACT_TCP_FLAGS))
		actions_tcp_flags(ctx, m, &r->emul);
	return 0;
}

#endif /* BAE_ACTIONS_H */
