/* SPDX-License-Identifier: GPL-2.0 */
/*
 * policy_match.h: classifying a packet for the policy stage (policy.h): its address classes
 * (IPv4 arrays, hash, LPM trie), port classes and the combination table that names its candidate
 * rules (docs/policies.md has the tables).
 */
#ifndef BAE_POLICY_MATCH_H
#define BAE_POLICY_MATCH_H

#include "policy_maps.h"

/* dst = src masked to its first len bits (addresses in network order). */
static __always_inline void policy_mask(__u8 *dst, const __u8 *src, __u32 len)
{
#pragma unroll
	for (int w = 0; w < 4; w++) {
		__u32 word, bits = len > 32 * w ? len - 32 * w : 0;

		__builtin_memcpy(&word, src + 4 * w, 4);
		if (bits < 32)
			word &= bpf_htonl(bits ? ~0U << (32 - bits) : 0);
		__builtin_memcpy(dst + 4 * w, &word, 4);
	}
}

/* IPv4 prefix class from the direct tables of policy_v4 (bae.h): one array read per level. */
static __always_inline __u32 policy_v4_class(__u32 gen, __u32 dim, const __u8 *addr)
{
	__u32 base = ((gen & 1) * 2 + (dim & 1)) * POLICY_V4_REGION;
	__u32 idx = base + addr[0];
	struct policy_v4_chunk *c = bpf_map_lookup_elem(&policy_v4, &idx);
	__u32 v;

	if (!c)
		return 0;
	v = c->cls[addr[1]];
#pragma unroll
	for (int i = 2; i < 4; i++) {
		if (!(v & POLICY_V4_CHUNK))
			return v;
		idx = base + (v & POLICY_V4_INDEX_MASK);
		c = bpf_map_lookup_elem(&policy_v4, &idx);
		if (!c)
			return 0;
		v = c->cls[addr[i]];
	}
	return v & POLICY_V4_CHUNK ? 0 : v;
}

/* The prefix class of an address: the longest inserted prefix of its dimension that holds it. */
static __always_inline __u32 policy_prefix_class(const struct policy_gen_info *g, __u32 gen,
						 __u32 dim, void *trie, const struct pkt_meta *m,
						 const __u8 *addr)
{
	const struct policy_dim *d = &g->dims[dim & 1][m->family == AF_INET ? 0 : 1];
	__u32 *cls;

	if (d->mode == POLICY_LOOKUP_V4)
		return policy_v4_class(gen, dim, addr);
	if (d->mode == POLICY_LOOKUP_HASH) {
		struct policy_prefix_key key = { .gen = gen, .dim = dim, .family = m->family };

#pragma unroll
		for (int i = 0; i < POLICY_HASH_LENGTHS; i++) {
			if (i >= d->count)
				break;
			key.len = d->lens[i];
			policy_mask(key.addr, addr, key.len);
			cls = bpf_map_lookup_elem(&policy_prefixes, &key);
			if (cls)
				return *cls;
		}
		return 0;
	}
	if (d->mode == POLICY_LOOKUP_TRIE) {
		struct policy_lpm_key key = {
			.prefixlen = 16 + (m->family == AF_INET ? 32 : 128),
			.gen = gen,
			.family = m->family,
		};

		__builtin_memcpy(key.addr, addr, 16);
		cls = bpf_map_lookup_elem(trie, &key);
		return cls ? *cls : 0;
	}
	return 0;
}

/* The port's class with POLICY_PORT_USED when some combination has it. */
static __always_inline __u16 policy_port_class(__u32 gen, __u32 dir, __u16 port)
{
	__u32 index = (gen * 2 + dir) * POLICY_PORT_ENTRIES + port / POLICY_PORTS_PER_ENTRY;
	struct policy_port_classes *e = bpf_map_lookup_elem(&policy_ports, &index);

	return e ? e->cls[port % POLICY_PORTS_PER_ENTRY] : 0;
}

/* The hash of the combination table (src/policy/combo-table.ts comboHash computes the same):
 * the key's four 32-bit words, little-endian, mixed into the seed. */
static __always_inline __u32 policy_combo_hash(const struct policy_combo_key *k, __u32 seed)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = seed;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		h = (h ^ w[i]) * 0x9E3779B1U;
		h ^= h >> 15;
	}
	h ^= h >> 13;
	h *= 0x85EBCA6BU;
	h ^= h >> 16;
	return h;
}

/* The candidates of a combination, or NULL: the cuckoo lookup of bae.h's policy_combos. */
static __always_inline struct policy_combo *policy_combo_find(const struct policy_gen_info *g, __u32 gen,
							     const struct policy_combo_key *k)
{
	__u32 h = policy_combo_hash(k, g->combo_seed);
	__u32 mask = g->combo_mask & (POLICY_COMBO_SLOTS / POLICY_COMBO_WAYS - 1);
	__u32 base = (gen & 1) * POLICY_COMBO_SLOTS;
	const __u64 *kw = (const __u64 *)k;

#pragma unroll
	for (int t = 0; t < 2; t++) {
		__u32 bucket = (t ? h >> 16 : h) & mask;

#pragma unroll
		for (int w = 0; w < POLICY_COMBO_WAYS; w++) {
			__u32 idx = base + bucket * POLICY_COMBO_WAYS + w;
			struct policy_combo_slot *s = bpf_map_lookup_elem(&policy_combos, &idx);
			const __u64 *sw;

			if (!s || s->epoch != g->combo_epoch)
				return NULL; /* a free slot: the key is in no later one */
			sw = (const __u64 *)&s->key;
			if (sw[0] == kw[0] && sw[1] == kw[1])
				return &s->combo;
		}
	}
	return NULL;
}

/* What the combination leaves to each candidate: its TCP flags and the interface of arrival. */
static __always_inline int policy_rule_matches(const struct policy_rule *r, const struct pkt_meta *m)
{
	return (m->tcp_flags & r->tcp_flags_mask) == r->tcp_flags_value &&
	       (!r->ifindex || r->ifindex == m->ingress_ifindex);
}

#endif /* BAE_POLICY_MATCH_H */
