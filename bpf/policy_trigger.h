/* SPDX-License-Identifier: GPL-2.0 */
/*
 * policy_trigger.h: trigger windows (a metric over a time bucket, per rule, source, destination
 * or conversation), the events they emit, and the blocklist. Part of the policy stage (policy.h).
 */
#ifndef BAE_POLICY_TRIGGER_H
#define BAE_POLICY_TRIGGER_H

#include "policy_maps.h"

/* What a trigger window starts from (read-only data, no stack copy). */
static const struct policy_trigger policy_trigger_zero;

/* What this packet adds to a metric (src/policy/metrics.ts metricContribution). */
static __always_inline __u64 policy_metric_value(const struct pkt_meta *m, __u8 metric)
{
	switch (metric) {
	case POLICY_METRIC_PACKETS:
		return 1;
	case POLICY_METRIC_BYTES:
		return m->frame_len;
	case POLICY_METRIC_TCP_SYN:
		return m->l4_proto == POLICY_TCP &&
		       (m->tcp_flags & (BAE_TCP_SYN | POLICY_TCP_ACK)) == BAE_TCP_SYN;
	case POLICY_METRIC_TCP_RST:
		return m->l4_proto == POLICY_TCP && (m->tcp_flags & BAE_TCP_RST);
	case POLICY_METRIC_TCP_FIN:
		return m->l4_proto == POLICY_TCP && (m->tcp_flags & BAE_TCP_FIN);
	case POLICY_METRIC_TCP_RETRANSMITS:
		return !!(m->facts & BAE_FACT_RETRANSMIT);
	case POLICY_METRIC_OUT_OF_ORDER:
		return !!(m->facts & BAE_FACT_OUT_OF_ORDER);
	case POLICY_METRIC_ICMP_UNREACHABLE:
		return (m->parse == BAE_PARSE_ICMP && m->icmp_type == 3) ||
		       (m->parse == BAE_PARSE_ICMPV6 && m->icmp_type == 1);
	case POLICY_METRIC_NEW_CONVERSATIONS:
		return !!(m->facts & BAE_FACT_NEW_CONV);
	/* A retransmitted segment repeats a request or response already counted (a server that
	 * resends its 404 under load must not bring the client's block one error closer). */
	case POLICY_METRIC_HTTP_REQUESTS:
		return (m->facts & (BAE_FACT_HTTP_REQUEST | BAE_FACT_RETRANSMIT)) == BAE_FACT_HTTP_REQUEST;
	case POLICY_METRIC_HTTP_RESPONSES:
		return (m->facts & (BAE_FACT_HTTP_RESPONSE | BAE_FACT_RETRANSMIT)) == BAE_FACT_HTTP_RESPONSE;
	case POLICY_METRIC_HTTP_ERRORS:
		return (m->facts & (BAE_FACT_HTTP_ERROR | BAE_FACT_RETRANSMIT)) == BAE_FACT_HTTP_ERROR;
	case POLICY_METRIC_HTTP_5XX:
		return (m->facts & (BAE_FACT_HTTP_5XX | BAE_FACT_RETRANSMIT)) == BAE_FACT_HTTP_5XX;
	}
	return 0;
}

/* Response metrics count for the response's destination (the client): see enum policy_metric. */
static __always_inline int policy_metric_reversed(__u8 metric)
{
	return metric == POLICY_METRIC_HTTP_RESPONSES || metric == POLICY_METRIC_HTTP_ERRORS ||
	       metric == POLICY_METRIC_HTTP_5XX;
}

/* The address a rule's scope and block take as "source", and the other one. */
static __always_inline const __u8 *policy_rule_src(const struct pkt_meta *m, const struct policy_rule *r)
{
	return policy_metric_reversed(r->metric) ? m->daddr : m->saddr;
}

static __always_inline const __u8 *policy_rule_dst(const struct pkt_meta *m, const struct policy_rule *r)
{
	return policy_metric_reversed(r->metric) ? m->saddr : m->daddr;
}

/* An event of rule r (addresses as its metric takes them: the client first for responses). */
static __always_inline void policy_event_emit(const struct pkt_meta *m, const struct policy_rule *r,
					      __u8 kind, __u64 value, struct policy_stats *stats)
{
	struct policy_event *e = bpf_ringbuf_reserve(&policy_events, sizeof(*e), 0);

	if (!e) {
		stats->events_lost++;
		return;
	}
	e->time_ns = m->now_ns;
	e->value = value;
	e->policy_id = r->id;
	e->kind = kind;
	e->scope = r->scope;
	e->family = m->family;
	e->pad = 0;
	__builtin_memcpy(e->addr_a, policy_rule_src(m, r), 16);
	__builtin_memcpy(e->addr_b, policy_rule_dst(m, r), 16);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void policy_trigger_key_build(struct policy_trigger_key *k,
						     const struct policy_rule *r,
						     const struct pkt_meta *m)
{
	k->id = r->id;
	k->scope = r->scope;
	if (r->scope == POLICY_SCOPE_POLICY)
		return;
	k->family = m->family;
	if (r->scope == POLICY_SCOPE_SOURCE) {
		__builtin_memcpy(k->addr_a, policy_rule_src(m, r), 16);
	} else if (r->scope == POLICY_SCOPE_DESTINATION) {
		__builtin_memcpy(k->addr_a, policy_rule_dst(m, r), 16);
	} else {
		/* The conversation as bae_convs keys it: lower address first. */
		__builtin_memcpy(k->addr_a, m->conv_key.addr_a, 16);
		__builtin_memcpy(k->addr_b, m->conv_key.addr_b, 16);
	}
}

/*
 * Counts the packet in the rule's window and says whether the rule is on for it (1) or not (0).
 * Integer arithmetic, exactly as reference.ts: bucket = now / bucket_ns; buckets between the
 * newest one and this one are cleared (all of them after a gap of POLICY_WINDOW_BUCKETS or
 * more); a bucket index older than the newest counts in the newest; the sum of all slots is the
 * window. A rule that is not on fires when the sum passes the threshold and the cooldown is
 * over: it is then on until now + for (for 0: for ever), and the packet that fired it is
 * already treated.
 *
 * Verifier: a global function, checked once. Inlined into the candidate callback it was checked
 * again for every state the callback was entered with (each rule kind, each loop iteration the
 * verifier could not prune). `slot` names the rule's counters, looked up here: a pointer
 * argument of a global function is plain memory to the callee, not a map value.
 */
__noinline int policy_trigger_eval(const struct policy_rule *r, const struct pkt_meta *m, __u32 slot)
{
	struct policy_trigger_key key = {};
	struct policy_counters *cnt;
	struct policy_stats *stats;
	struct policy_trigger *st;
	__u32 zero = 0;
	__u64 now, idx, sum = 0, until;
	int pass;

	if (!r || !m) /* Verifier: a global function's pointers may be NULL. */
		return 0;
	stats = bpf_map_lookup_elem(&policy_stats, &zero);
	if (!stats) /* Verifier: a one-entry array, key 0 cannot miss. */
		return 0;
	now = m->now_ns;
	policy_trigger_key_build(&key, r, m);
	st = bpf_map_lookup_elem(&policy_triggers, &key);
	if (!st) {
		bpf_map_update_elem(&policy_triggers, &key, &policy_trigger_zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&policy_triggers, &key);
		if (!st) {
			stats->trigger_full++;
			return 0;
		}
	}
	idx = r->bucket_ns ? now / r->bucket_ns : 0;
	if (idx > st->bucket_base) {
		__u64 gap = idx - st->bucket_base;

		if (gap >= POLICY_WINDOW_BUCKETS) {
#pragma unroll
			for (int i = 0; i < POLICY_WINDOW_BUCKETS; i++)
				st->counts[i] = 0;
		} else {
#pragma unroll
			for (int i = 1; i < POLICY_WINDOW_BUCKETS; i++)
				if (i <= gap)
					st->counts[(st->bucket_base + i) % POLICY_WINDOW_BUCKETS] = 0;
		}
		st->bucket_base = idx;
	}
	__sync_fetch_and_add(&st->counts[st->bucket_base % POLICY_WINDOW_BUCKETS],
			     policy_metric_value(m, r->metric));
#pragma unroll
	for (int i = 0; i < POLICY_WINDOW_BUCKETS; i++)
		sum += st->counts[i];

	if (now < st->fired_until)
		return 1;
	if (now < st->cooldown_until)
		return 0;
	pass = r->op == POLICY_OP_GE ? sum >= r->threshold : sum > r->threshold;
	if (!pass)
		return 0;
	until = r->for_ns ? now + r->for_ns : ~0ULL;
	if (until < now) /* wrapped: stays on */
		until = ~0ULL;
	st->fired_until = until;
	st->cooldown_until = r->for_ns ? until + r->cooldown_ns : ~0ULL;
	if (st->cooldown_until < until)
		st->cooldown_until = ~0ULL;
	cnt = bpf_map_lookup_elem(&policy_counters, &slot);
	if (cnt)
		cnt->fired++;
	policy_event_emit(m, r, POLICY_EVENT_FIRE, sum, stats);
	return 1;
}

/* The LPM key of an address: the whole address, to find the longest prefix that holds it. */
static __always_inline void policy_block_lpm_key_of(struct policy_block_lpm_key *k, __u8 family,
						    const __u8 *addr)
{
	k->prefixlen = 32 + (family == AF_INET ? 32 : 128);
	k->family = family;
	__builtin_memcpy(k->addr, addr, 16);
}

/*
 * Source on the blocklist, or inside a blocked prefix, with an expiry still ahead: the packet is
 * dropped. `used` is slot 0 of policy_block_used (any address listed), `flags` slot 1.
 */
static __always_inline int policy_blocked(const struct pkt_meta *m, __u32 used, __u32 flags)
{
	if (used) {
		struct policy_block_key key = { .family = m->family };
		__u64 *expiry;

		__builtin_memcpy(key.addr, m->saddr, 16);
		expiry = bpf_map_lookup_elem(&policy_blocklist, &key);
		if (expiry && m->now_ns < *expiry)
			return 1;
	}
	if (flags & POLICY_BLOCK_PREFIXES) {
		struct policy_block_lpm_key key = {};
		__u64 *expiry;

		policy_block_lpm_key_of(&key, m->family, m->saddr);
		expiry = bpf_map_lookup_elem(&policy_block_prefixes, &key);
		if (expiry && m->now_ns < *expiry)
			return 1;
	}
	return 0;
}

/* An address inside a protected prefix: no policy may block it. */
static __always_inline int policy_protected_addr(__u8 family, const __u8 *addr)
{
	__u32 one = 1, *flags = bpf_map_lookup_elem(&policy_block_used, &one);
	struct policy_block_lpm_key key = {};

	if (!flags || !(*flags & POLICY_BLOCK_PROTECTED))
		return 0;
	policy_block_lpm_key_of(&key, family, addr);
	return bpf_map_lookup_elem(&policy_protected, &key) != NULL;
}

/*
 * The TTL of rule r's block of `key` at `now`: block_ttl_ns x factor^n, at most max_ns, where n
 * is the address's count of escalating blocks unless its memory lapsed (forget_ns after the
 * latest one ended). With `record`, the block is counted: count n + 1, expiry now + the TTL.
 * Two CPUs blocking one address at once may count it once: a block is rare, the LRU value is
 * updated in place, and the worst case is one step less.
 *
 * Verifier: a global function (the bounded loop is checked once, not in every state of the
 * candidate callback); its pointers may be NULL, and point to plain memory of their type.
 */
__noinline __u64 policy_escalate_ttl(const struct policy_rule *r, const struct policy_block_key *key,
				     __u64 now, int record)
{
	struct policy_offence fresh = {}, *o;
	struct policy_block_key k;
	__u64 ttl, max, factor, n = 0;

	if (!r || !key)
		return 0;
	/* Verifier (6.1): a global function's pointer argument is PTR_TO_MEM, which 6.1's map
	 * helpers refuse as a key (6.12 takes it): the key goes through the stack. */
	__builtin_memcpy(&k, key, sizeof(k));
	ttl = r->block_ttl_ns;
	max = r->escalate.max_ns;
	factor = r->escalate.factor;
	o = bpf_map_lookup_elem(&policy_offences, &k);
	if (o && (now < o->last_expiry_ns || now - o->last_expiry_ns < r->escalate.forget_ns))
		n = o->count;
	for (__u32 i = 0; i < POLICY_ESCALATE_STEPS && i < n && ttl < max && factor > 1; i++)
		ttl = ttl > max / factor ? max : ttl * factor;
	if (ttl > max)
		ttl = max;
	if (!record)
		return ttl;
	if (o) {
		o->count = n + 1;
		o->last_expiry_ns = now + ttl;
	} else {
		fresh.count = 1;
		fresh.last_expiry_ns = now + ttl;
		bpf_map_update_elem(&policy_offences, &k, &fresh, BPF_ANY);
	}
	return ttl;
}

/*
 * Blocks the rule's source (the client for response metrics) for block_ttl_ns, or escalated
 * (policy_escalate_ttl) when the rule escalates. One that is blocked already is not blocked
 * again: its block keeps its expiry, and no event is sent. A protected source is not blocked: the
 * refusal is counted and sent as an event. A monitor-only rule blocks nothing and sends
 * POLICY_EVENT_WOULD_BLOCK. Refusals and would-blocks carry the expiry the block would have had
 * and leave the history alone.
 */
static __always_inline void policy_block(const struct pkt_meta *m, const struct policy_rule *r,
					 struct policy_counters *cnt, struct policy_stats *stats)
{
	struct policy_block_key key = { .family = m->family };
	__u64 expiry, *old;
	__u32 zero = 0, *used;
	int refused, monitor;

	__builtin_memcpy(key.addr, policy_rule_src(m, r), 16);
	old = bpf_map_lookup_elem(&policy_blocklist, &key);
	if (old && m->now_ns < *old)
		return;
	refused = policy_protected_addr(m->family, key.addr);
	monitor = r->flags & POLICY_RULE_MONITOR;
	expiry = m->now_ns + (r->escalate.factor ?
			      policy_escalate_ttl(r, &key, m->now_ns, !refused && !monitor) :
			      r->block_ttl_ns);
	if (refused) {
		stats->block_refused++;
		policy_event_emit(m, r, POLICY_EVENT_REFUSED, expiry, stats);
		return;
	}
	if (monitor) {
		policy_event_emit(m, r, POLICY_EVENT_WOULD_BLOCK, expiry, stats);
		return;
	}
	/* Before the entry exists, so that no packet skips the lookup once it does. */
	used = bpf_map_lookup_elem(&policy_block_used, &zero);
	if (used && !*used)
		__sync_fetch_and_or(used, 1);
	bpf_map_update_elem(&policy_blocklist, &key, &expiry, BPF_ANY);
	if (cnt)
		cnt->blocks++;
	policy_event_emit(m, r, POLICY_EVENT_BLOCK, expiry, stats);
}

#endif /* BAE_POLICY_TRIGGER_H */
