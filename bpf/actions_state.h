/* SPDX-License-Identifier: GPL-2.0 */
/*
 * actions_state.h: the per-rule state of the emulation actions (actions.h): its splitmix64
 * random sequence, the rate limiter's token bucket and the loss models (Bernoulli, correlated,
 * Gilbert-Elliott).
 */
#ifndef BAE_ACTIONS_STATE_H
#define BAE_ACTIONS_STATE_H

#include "policy_maps.h"

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

#endif /* BAE_ACTIONS_STATE_H */
