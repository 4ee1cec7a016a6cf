// SPDX-License-Identifier: GPL-2.0
/*
 * bae.bpf.c: the bae XDP program. Per packet:
 *
 *   parse (parsing.h) -> count the parse outcome -> conversation profile and TCP flow state
 *   -> [policy stage] -> verdict: XDP_PASS (ingress mode) or redirect to the peer port (inline)
 *
 * Nothing here drops a packet: what does not parse is counted and forwarded like the rest.
 * Shared structs and enums are in bae.h (mirrored by src/datapath/layout.ts); the rules of the
 * profile fields and of the TCP analysis are in docs/profiles.md.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bae.h"
#include "parsing.h"
#include "delay_tx.h"

/* Helpers return a final XDP verdict, or this to let the pipeline go on. */
#define BAE_CONTINUE -1

/* Default map sizes; the loader sets the real ones before load (loadCollection maxEntries). */
#ifndef BAE_CONVS_DEFAULT
#define BAE_CONVS_DEFAULT 16384
#endif
#ifndef BAE_FLOWS_DEFAULT
#define BAE_FLOWS_DEFAULT 16384
#endif
#ifndef BAE_PORTS_MAX
#define BAE_PORTS_MAX 64 /* ports of inline mode; two for a bump in the wire */
#endif

/*
 * Profiles are per-CPU: each CPU adds to its own copy without atomics and user space sums the
 * copies (layout.ts mergeConvDirs). bpf/test/bae_shared.bpf.c builds the alternative, one shared
 * copy with atomic adds, for bench/prog-ns.ts to measure against; docs/profiles.md has figures.
 */
#ifdef BAE_PROFILE_SHARED
#define BAE_CONVS_TYPE BPF_MAP_TYPE_LRU_HASH
#define PROFILE_ADD(field, v) __sync_fetch_and_add(&(field), (v))
#else
#define BAE_CONVS_TYPE BPF_MAP_TYPE_LRU_PERCPU_HASH
#define PROFILE_ADD(field, v) ((field) += (v))
#endif

/* ---- load-time knobs --------------------------------------------------------------------- */

const volatile __u32 bae_mode = BAE_MODE_INGRESS;  /* enum bae_mode */
const volatile __u32 bae_clock = BAE_CLOCK_REAL;   /* enum bae_clock */

/* ---- maps -------------------------------------------------------------------------------- */

struct {
	__uint(type, BAE_CONVS_TYPE);
	__uint(max_entries, BAE_CONVS_DEFAULT);
	__type(key, struct bae_conv_key);
	__type(value, struct bae_conv);
} bae_convs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BAE_FLOWS_DEFAULT);
	__type(key, struct bae_flow_key);
	__type(value, struct bae_tcp_flow);
} bae_tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bae_stats);
} bae_stats SEC(".maps");

/* Inline mode: ingress ifindex -> egress ifindex, filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, BAE_PORTS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} bae_ports SEC(".maps");

/* This CPU's struct pkt_meta of the packet in flight (see parsing.h for why not the stack).
 * XDP runs with preemption off and never nests on one CPU, so one slot per CPU is enough. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_meta);
} bae_meta SEC(".maps");

/* Layer-7 facts: the HTTP ports and the request and status lines (l7.h). */
#include "l7.h"

/* BAE_CLOCK_TEST: slot 0 holds "now" in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bae_test_clock SEC(".maps");

/* BTF: names every enum and struct of bae.h that user space reads (see struct bae_abi). */
const struct bae_abi bae_abi_anchor = {};

/* The value a new conversation starts from (read-only data, no stack copy of 464 bytes). */
static const struct bae_conv conv_zero;

/* ---- helpers ----------------------------------------------------------------------------- */

static __always_inline __u64 clock_now(void)
{
	if (bae_clock == BAE_CLOCK_TEST) {
		__u32 slot = 0;
		__u64 *now = bpf_map_lookup_elem(&bae_test_clock, &slot);

		return now ? *now : 0;
	}
	return bpf_ktime_get_ns();
}

/* The 32-bit word of a map key that holds bytes b0, b1 and then the 16-bit h, in memory order:
 * one store instead of three, see conv_key_build. */
static __always_inline __u32 key_word(__u8 b0, __u8 b1, __u16 h)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return b0 | (__u32)b1 << 8 | (__u32)h << 16;
#else
	return (__u32)b0 << 24 | (__u32)b1 << 16 | h;
#endif
}

/* The 32-bit word that holds the 16-bit h in its first two bytes and zero padding after. */
static __always_inline __u32 key_word_low16(__u16 h)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return h;
#else
	return (__u32)h << 16;
#endif
}

/* Compares word `i` of two addresses numerically (network order): <0, 0, >0. */
static __always_inline int addr_word_cmp(const __u8 *a, const __u8 *b, int i)
{
	__u32 x = bpf_ntohl(((const __u32 *)a)[i]);
	__u32 y = bpf_ntohl(((const __u32 *)b)[i]);

	return x == y ? 0 : x < y ? -1 : 1;
}

/* Compares two addresses of a family numerically: <0, 0, >0. */
static __always_inline int addr_cmp(const __u8 *a, const __u8 *b, __u8 family)
{
	int cmp = addr_word_cmp(a, b, 0);

	if (cmp || family == AF_INET)
		return cmp;
	if ((cmp = addr_word_cmp(a, b, 1)))
		return cmp;
	if ((cmp = addr_word_cmp(a, b, 2)))
		return cmp;
	return addr_word_cmp(a, b, 3);
}

/* The conversation key: lower address first; m->dir says which way this packet goes. */
static __always_inline void conv_key_build(struct pkt_meta *m)
{
	int cmp = addr_cmp(m->saddr, m->daddr, m->family);

	/* The map's hash reads the key back in 32-bit words right after these stores: each word
	 * written by one store is forwarded by the CPU; a word pieced together from a byte store and
	 * the memset's wider one waits for both to retire (about 12 ns a packet here). */
	*(__u32 *)&m->conv_key = key_word(m->family, 0, 0);
	m->addr_equal = cmp == 0;
	if (cmp <= 0) {
		m->dir = BAE_DIR_A_TO_B;
		__builtin_memcpy(m->conv_key.addr_a, m->saddr, 16);
		__builtin_memcpy(m->conv_key.addr_b, m->daddr, 16);
	} else {
		m->dir = BAE_DIR_B_TO_A;
		__builtin_memcpy(m->conv_key.addr_a, m->daddr, 16);
		__builtin_memcpy(m->conv_key.addr_b, m->saddr, 16);
	}
}

/* This CPU's copy of the packet's direction in its conversation, inserted when new. */
static __always_inline struct bae_conv_dir *conv_dir_get(struct pkt_meta *m, struct bae_stats *stats)
{
	struct bae_conv *conv = bpf_map_lookup_elem(&bae_convs, &m->conv_key);

	if (!conv) {
		/* Another CPU may insert the same key first; BPF_NOEXIST then fails and the lookup
		 * finds its entry. The LRU evicts the coldest entry when the map is full. */
		if (bpf_map_update_elem(&bae_convs, &m->conv_key, &conv_zero, BPF_NOEXIST) == 0)
			m->facts |= BAE_FACT_NEW_CONV;
		conv = bpf_map_lookup_elem(&bae_convs, &m->conv_key);
		if (!conv) {
			stats->conv_full++;
			return NULL;
		}
	}
	return &conv->dir[m->dir & 1];
}

/* Frame-length histogram bucket, see BAE_SIZE_BUCKETS; a compare tree, no loop. */
static __always_inline __u32 size_bucket(__u32 len)
{
	if (len < 512) {
		if (len < 128)
			return len < 64 ? 0 : 1;
		return len < 256 ? 2 : 3;
	}
	if (len < 2048)
		return len < 1024 ? 4 : 5;
	return len < 4096 ? 6 : 7;
}

/* Lower edge of inter-arrival bucket 1 (10 us): shorter gaps are bucket 0, never stored. */
#define BAE_IAT_STORED_NS 10000ULL

/* Inter-arrival bucket (1..7) of a gap of at least BAE_IAT_STORED_NS, see BAE_IAT_BUCKETS; a
 * compare tree, no loop, no division. */
static __always_inline __u32 iat_bucket(__u64 gap)
{
	if (gap < 10000000ULL) /* 10 ms */
		return gap < 100000ULL ? 1 : gap < 1000000ULL ? 2 : 3;
	if (gap < 1000000000ULL) /* 1 s */
		return gap < 100000000ULL ? 4 : 5;
	return gap < 10000000000ULL ? 6 : 7;
}

/* Counts one frame in its direction: volume, sizes, timing, TTL and TCP flags. The packet's
 * fields are read into registers first and d is pinned in one (barrier_var): otherwise clang
 * recomputes d from the conversation and the direction before each field and spills them. */
static __always_inline void conv_dir_count(struct bae_conv_dir *d, struct pkt_meta *m)
{
	__u32 len = m->frame_len;
	__u64 now = m->now_ns;
	__u8 ttl = m->ttl, facts = m->facts;

	barrier_var(d);
	if (d->packets == 0) {
		d->first_seen_ns = now;
		d->size_min = len;
		d->ttl_min = ttl;
	} else {
		/* A test clock may go backwards; a gap is never negative. */
		__u64 gap = now > d->last_seen_ns ? now - d->last_seen_ns : 0;
		__u64 units = gap >> 10;

		if (units > 0xFFFFFFFFULL)
			units = 0xFFFFFFFFULL;
		PROFILE_ADD(d->iat_sum_ns, gap);
		PROFILE_ADD(d->iat_sum_sq_1024ns, units * units);
		if (gap >= BAE_IAT_STORED_NS)
			PROFILE_ADD(d->iat_hist[iat_bucket(gap) - 1], 1);
		if (len < d->size_min)
			d->size_min = len;
		if (ttl < d->ttl_min)
			d->ttl_min = ttl;
	}
	if (len > d->size_max)
		d->size_max = len;
	if (ttl > d->ttl_max)
		d->ttl_max = ttl;
	d->ttl_last = ttl;
	d->last_seen_ns = now;

	PROFILE_ADD(d->packets, 1);
	PROFILE_ADD(d->bytes, len);
	PROFILE_ADD(d->size_sum_sq, (__u64)len * len);
	PROFILE_ADD(d->size_hist[size_bucket(len)], 1);

	if (facts & (BAE_FACT_HTTP_REQUEST | BAE_FACT_HTTP_RESPONSE)) {
		PROFILE_ADD(d->http_requests, !!(facts & BAE_FACT_HTTP_REQUEST));
		PROFILE_ADD(d->http_responses, !!(facts & BAE_FACT_HTTP_RESPONSE));
		PROFILE_ADD(d->http_errors, !!(facts & BAE_FACT_HTTP_ERROR));
		PROFILE_ADD(d->http_5xx, !!(facts & BAE_FACT_HTTP_5XX));
	}
	if (m->parse == BAE_PARSE_TCP && m->tcp_flags) {
		__u8 f = m->tcp_flags;

#pragma unroll
		for (int i = 0; i < BAE_TCP_FLAGS; i++)
			if (f & (1 << i))
				PROFILE_ADD(d->tcp_flags[i], 1);
	}
}

/* The 5-tuple key of a TCP flow, oriented like its conversation (ports decide for a == b). */
static __always_inline __u32 flow_key_build(struct pkt_meta *m, struct bae_flow_key *key)
{
	__u32 dir = m->dir;

	if (m->addr_equal)
		dir = m->sport <= m->dport ? BAE_DIR_A_TO_B : BAE_DIR_B_TO_A;
	/* Whole words, for the hash that reads them right back (see conv_key_build). */
	((__u32 *)key)[0] = key_word(m->family, IPPROTO_TCP, dir == BAE_DIR_A_TO_B ? m->sport : m->dport);
	((__u32 *)key)[1] = key_word_low16(dir == BAE_DIR_A_TO_B ? m->dport : m->sport);
	__builtin_memcpy(key->addr_a, m->conv_key.addr_a, 16);
	__builtin_memcpy(key->addr_b, m->conv_key.addr_b, 16);
	return dir;
}

/*
 * TCP sequence analysis of one segment (the rules, exactly, are in docs/profiles.md):
 *   len = payload + SYN + FIN, end = seq + len (mod 2^32); per flow direction seq_high is the
 *   highest end seen, i.e. the next expected seq.
 *   - first segment with len > 0 of the direction, or a SYN whose end differs from seq_high
 *     (a new connection on the same ports): seq_high = end, nothing counted;
 *   - len > 0 and end <= seq_high: retransmission;
 *   - len > 0 and seq > seq_high: out-of-order (a gap before it); seq_high = end;
 *   - len > 0 otherwise (in order, or overlapping and extending): seq_high = end.
 * Only segments with len > 0 get here (profile_update); zero-window is counted there.
 * The flow entry is shared by all CPUs and updated without locks: RSS keeps a flow on one CPU,
 * and two CPUs racing on one flow can only misjudge the segments that raced.
 */
static __always_inline void tcp_flow_update(struct pkt_meta *m, struct bae_conv_dir *d,
					    struct bae_stats *stats)
{
	struct bae_flow_key key = {};
	struct bae_tcp_flow *flow;
	struct bae_tcp_half *half;
	__u32 dir = flow_key_build(m, &key);
	__u8 flags = m->tcp_flags;
	__u32 len, end;

	flow = bpf_map_lookup_elem(&bae_tcp_flows, &key);
	if (!flow) {
		struct bae_tcp_flow fresh = {};

		bpf_map_update_elem(&bae_tcp_flows, &key, &fresh, BPF_NOEXIST);
		flow = bpf_map_lookup_elem(&bae_tcp_flows, &key);
		if (!flow) {
			stats->flow_full++;
			return;
		}
	}
	half = &flow->dir[dir & 1];

	len = m->l4_payload_len + !!(flags & BAE_TCP_SYN) + !!(flags & BAE_TCP_FIN);
	end = m->tcp_seq + len;
	if (!half->seen || ((flags & BAE_TCP_SYN) && end != half->seq_high)) {
		half->seq_high = end;
		half->seen = 1;
	} else {
		if ((__s32)(end - half->seq_high) <= 0) {
			PROFILE_ADD(d->retransmits, 1);
			m->facts |= BAE_FACT_RETRANSMIT;
		} else {
			if ((__s32)(m->tcp_seq - half->seq_high) > 0) {
				PROFILE_ADD(d->out_of_order, 1);
				m->facts |= BAE_FACT_OUT_OF_ORDER;
			}
			half->seq_high = end;
		}
	}
	half->ack = m->tcp_ack;
	half->window = m->tcp_window;
}

/* Profile stage: every frame whose IP header parsed counts in its conversation. */
static __always_inline void profile_update(struct pkt_meta *m, struct bae_stats *stats)
{
	struct bae_conv_dir *d;

	m->now_ns = clock_now();
	conv_key_build(m);
	d = conv_dir_get(m, stats);
	if (!d)
		return;
	conv_dir_count(d, m);
	if (m->parse != BAE_PARSE_TCP)
		return;
	/* Zero-window needs no flow state. Segments without payload, SYN or FIN occupy no sequence
	 * space and cannot be retransmissions: skipping their flow lookup spares about half the
	 * lookups of a bulk transfer (the ACK direction). Fragments carry part of a segment: their
	 * length says nothing about sequence space. */
	if (m->tcp_window == 0 && !(m->tcp_flags & (BAE_TCP_SYN | BAE_TCP_FIN | BAE_TCP_RST)))
		PROFILE_ADD(d->zero_window, 1);
	if ((m->l4_payload_len || (m->tcp_flags & (BAE_TCP_SYN | BAE_TCP_FIN))) && !m->fragment)
		tcp_flow_update(m, d, stats);
}

/* Forwarding stage: the verdict for a packet no earlier stage claimed. */
static __always_inline int port_forward(__u32 ifindex, struct bae_stats *stats)
{
	int verdict;

	if (bae_mode != BAE_MODE_INLINE)
		return XDP_PASS;
	/* The low bits of flags are the verdict when the key is missing. */
	verdict = bpf_redirect_map(&bae_ports, ifindex, XDP_PASS);
	if (verdict != XDP_REDIRECT)
		stats->inline_no_port++;
	return verdict;
}

/*
 * Parse stage. Inlined, not a global function: the call, its saved registers and its NULL check
 * cost about 1.5 ns of a forwarded frame's 60 (bench/inline-pps, in place), and the verifier no
 * longer needs the wall. Every parser path leaves its outcome in the map value `m`, not in a
 * register or on the stack, and the stages after it read it from there: to the verifier one
 * unknown number, so the paths meet (inlined: 95k instructions on 6.18, 79k on 6.1, against
 * 87k and 78k as a global function).
 */
static __always_inline __u32 parse_stage(struct xdp_md *ctx, struct pkt_meta *m)
{
	m->parse = packet_parse(ctx, m);
	l7_http(ctx, m);
	return m->parse;
}

#ifndef BAE_NO_POLICY /* bench fixture bpf/test/bae_core.bpf.c measures the datapath alone */
#include "policy.h" /* the policy stage: policy_apply() */
#endif

/* ---- the program ------------------------------------------------------------------------- */

SEC("xdp")
int bae_xdp(struct xdp_md *ctx)
{
	struct bae_stats *stats;
	struct pkt_meta *meta;
	__u32 slot = 0, parse, ifindex = ctx->ingress_ifindex;
	int verdict;

	/* The delay line transmitting its due frames (bpf/delay_tx.h), not a received packet. */
	if (ifindex == DL_TX_INGRESS_IFINDEX && (verdict = dl_tx_frame(ctx)) >= 0)
		return verdict;

	stats = bpf_map_lookup_elem(&bae_stats, &slot);
	meta = bpf_map_lookup_elem(&bae_meta, &slot);
	if (!stats || !meta) /* Verifier: one-entry arrays, key 0 cannot miss, but must be checked. */
		return XDP_PASS;

	/* Everything but the conversation key, which the profile stage writes whole before anyone
	 * reads it (conv_key_build): 5 of 16 stores fewer per packet. */
	__builtin_memset(meta, 0, offsetof(struct pkt_meta, conv_key));
	/* ctx->ingress_ifindex is three dependent loads (rxq, its device, the index): once a frame. */
	meta->ingress_ifindex = ifindex;
	parse = parse_stage(ctx, meta);
	if (parse < BAE_PARSE_MAX) /* Verifier: bounds the index. */
		stats->parse[parse]++;

	if (parse < BAE_PARSE_NO_L3)
		profile_update(meta, stats);

	/* Policy stage (bpf/policy.h): after the profile update, so triggers see this packet, and
	 * before forwarding. A final verdict (XDP_DROP) or BAE_CONTINUE. */
#ifndef BAE_NO_POLICY
	if (!policy_idle()) {
		verdict = policy_apply(ctx, meta);
		if (verdict != BAE_CONTINUE)
			goto out;
	}
#endif

	verdict = port_forward(meta->ingress_ifindex, stats);
	goto out; /* the policy stage jumps here too */
out:
	slot = verdict;
	/* Verifier: without the barrier clang tests a copy of the verdict and indexes with the
	 * original register, which the verifier then sees unbounded. */
	barrier_var(slot);
	if (slot < BAE_VERDICTS)
		stats->verdicts[slot]++;
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
