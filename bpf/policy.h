/* SPDX-License-Identifier: GPL-2.0 */
/*
 * policy.h: the policy stage of the bae XDP program: blocklist, rule match, triggers, actions.
 * Included by bae.bpf.c after the profile stage; kernel only. The shared structs are in the
 * policy section of bae.h. Rules are map entries written by src/policy/apply.ts; this code is
 * the same for every policy set (docs/policies.md explains the tables; src/policy/reference.ts
 * is the same semantics in TypeScript and the differential test holds the two together).
 *
 * Per packet, whatever the number of rules: one array read (generation), the blocklist once any
 * source was blocked, two port-class reads, two prefix-class lookups (IPv4: array reads), up to
 * 8 array reads in the combination table, then at most POLICY_MAX_CANDIDATES rules, each with a
 * counter and possibly a trigger window.
 */
#ifndef BAE_POLICY_H
#define BAE_POLICY_H

#include "bae.h"
#include "parsing.h"

#define POLICY_TCP 6
#define POLICY_ICMP 1
#define POLICY_ICMPV6 58
#define POLICY_TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_ctl);
} policy_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POLICY_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* LPM tries must not be preallocated */
	__type(key, struct policy_lpm_key);
	__type(value, __u32);
} policy_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POLICY_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_lpm_key);
	__type(value, __u32);
} policy_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * 2 * POLICY_MAX_PREFIXES);
	__type(key, struct policy_prefix_key);
	__type(value, __u32);
} policy_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 2 * POLICY_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct policy_port_classes);
} policy_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 2 * POLICY_V4_REGION);
	__type(key, __u32);
	__type(value, struct policy_v4_chunk);
} policy_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POLICY_COMBO_SLOTS);
	__type(key, __u32);
	__type(value, struct policy_combo_slot);
} policy_combos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_rule);
} policy_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_TRIGGERS_MAX);
	__type(key, struct policy_trigger_key);
	__type(value, struct policy_trigger);
} policy_triggers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_counters);
} policy_counters SEC(".maps");

/* Written by user space only (see bae.h): counts of retired generations by stable id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_counters);
} policy_counter_base SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_BLOCKLIST_MAX);
	__type(key, struct policy_block_key);
	__type(value, __u64);
} policy_blocklist SEC(".maps");

/* Slot 0 turns 1 when the program first puts a source on the blocklist: until then the stage
 * skips the blocklist lookup (a hash lookup, most of what the stage costs when no rule is on).
 * Only the program writes it, and only from 0 to 1. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} policy_block_used SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_stats);
} policy_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, POLICY_EVENTS_BYTES);
} policy_events SEC(".maps");

/* Delay-class actions (bae.h delay section): the agent's AF_XDP sockets, key ingress ifindex *
 * POLICY_DELAY_CLASSES + class. The loader sizes it for the ports' ifindexes. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} bae_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_delay_stats);
} policy_delay_stats SEC(".maps");

/* The emulation actions: actions_decide(), actions_modify(). After the maps: they count in
 * policy_stats. */
#include "actions.h"

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
	}
	return 0;
}

static __always_inline void policy_event_emit(const struct pkt_meta *m, __u32 id, __u8 kind,
					      __u8 scope, __u64 value, struct policy_stats *stats)
{
	struct policy_event *e = bpf_ringbuf_reserve(&policy_events, sizeof(*e), 0);

	if (!e) {
		stats->events_lost++;
		return;
	}
	e->time_ns = m->now_ns;
	e->value = value;
	e->policy_id = id;
	e->kind = kind;
	e->scope = scope;
	e->family = m->family;
	e->pad = 0;
	__builtin_memcpy(e->addr_a, m->saddr, 16);
	__builtin_memcpy(e->addr_b, m->daddr, 16);
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
		__builtin_memcpy(k->addr_a, m->saddr, 16);
	} else if (r->scope == POLICY_SCOPE_DESTINATION) {
		__builtin_memcpy(k->addr_a, m->daddr, 16);
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
	policy_event_emit(m, r->id, POLICY_EVENT_FIRE, r->scope, sum, stats);
	return 1;
}

/* Source on the blocklist with an expiry still ahead: the packet is dropped. */
static __always_inline int policy_blocked(const struct pkt_meta *m)
{
	struct policy_block_key key = { .family = m->family };
	__u64 *expiry;

	__builtin_memcpy(key.addr, m->saddr, 16);
	expiry = bpf_map_lookup_elem(&policy_blocklist, &key);
	return expiry && m->now_ns < *expiry;
}

static __always_inline void policy_block(const struct pkt_meta *m, const struct policy_rule *r,
					 struct policy_counters *cnt, struct policy_stats *stats)
{
	struct policy_block_key key = { .family = m->family };
	__u64 expiry = m->now_ns + r->block_ttl_ns;
	__u32 zero = 0, *used = bpf_map_lookup_elem(&policy_block_used, &zero);

	/* Before the entry exists, so that no packet skips the lookup once it does. */
	if (used && !*used)
		*used = 1;
	__builtin_memcpy(key.addr, m->saddr, 16);
	bpf_map_update_elem(&policy_blocklist, &key, &expiry, BPF_ANY);
	if (cnt)
		cnt->blocks++;
	policy_event_emit(m, r->id, POLICY_EVENT_BLOCK, r->scope, expiry, stats);
}

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

/* State of the candidate loop, shared with its bpf_loop callback. */
struct policy_loop {
	struct pkt_meta *m;
	struct policy_combo *combo;
	struct policy_stats *stats;
	__u32 gen;
	int verdict; /* enum policy_verdict, set by the first rule that is on and decides */
	__u32 delay_class; /* set by the first rule that is on and has one, before any decided */
	__u32 emul_slot;   /* 1 + rule slot of the first such rule with emulation actions; 0 none */
};

/*
 * One candidate rule. Verifier: a bpf_loop callback is verified as one body; the same loop
 * unrolled (8 rules, each with a trigger window) exceeds the verifier's budget.
 */
static long policy_candidate(__u32 i, void *data)
{
	struct policy_loop *l = data;
	struct pkt_meta *m = l->m;
	struct policy_counters *cnt;
	struct policy_rule *r;
	__u32 slot;
	int on;

	if (i >= POLICY_MAX_CANDIDATES || i >= l->combo->count)
		return 1;
	slot = l->gen * POLICY_MAX_RULES + (l->combo->slots[i] & (POLICY_MAX_RULES - 1));
	r = bpf_map_lookup_elem(&policy_rules, &slot);
	if (!r)
		return 1;
	if (!policy_rule_matches(r, m))
		return 0;
	cnt = bpf_map_lookup_elem(&policy_counters, &slot);
	if (cnt)
		cnt->matched++;
	on = r->metric == POLICY_METRIC_NONE ? 1 : policy_trigger_eval(r, m, slot);
	/* Once a rule decided, lower rules still count their triggers but act no more. */
	if (!on || l->verdict != POLICY_VERDICT_NONE)
		return 0;
	if (cnt)
		cnt->applied++;
	if (r->action_mask & (1 << POLICY_ACT_EVENT))
		policy_event_emit(m, r->id, POLICY_EVENT_MATCH, r->scope, m->frame_len, l->stats);
	if (r->action_mask & (1 << POLICY_ACT_BLOCK))
		policy_block(m, r, cnt, l->stats);
	if (r->delay_class && !l->delay_class)
		l->delay_class = r->delay_class;
	l->verdict = r->verdict;
	/* Emulation (actions.h): rate and loss decide here; a loss ends the walk like a drop. */
	if (!l->emul_slot && (r->action_mask & POLICY_EMUL_ACTIONS)) {
		l->emul_slot = slot + 1;
		if (actions_decide(r, m))
			l->verdict = POLICY_VERDICT_DROP;
	}
	return 0;
}

/*
 * The candidates of a POLICY_COMBO_PLAIN combination, inline: what policy_candidate does for a
 * rule without trigger, delay class, event, block or emulation, for each in turn.
 */
static __always_inline int policy_plain(const struct pkt_meta *m, const struct policy_combo *combo, __u32 gen)
{
	int verdict = POLICY_VERDICT_NONE;

#pragma unroll
	for (int i = 0; i < POLICY_MAX_CANDIDATES; i++) {
		struct policy_counters *cnt;
		struct policy_rule *r;
		__u32 slot;

		if (i >= combo->count)
			break;
		slot = gen * POLICY_MAX_RULES + (combo->slots[i] & (POLICY_MAX_RULES - 1));
		r = bpf_map_lookup_elem(&policy_rules, &slot);
		if (!r)
			break;
		if (!policy_rule_matches(r, m))
			continue;
		cnt = bpf_map_lookup_elem(&policy_counters, &slot);
		if (cnt)
			cnt->matched++;
		if (verdict != POLICY_VERDICT_NONE)
			continue;
		if (cnt)
			cnt->applied++;
		verdict = r->verdict;
	}
	return verdict == POLICY_VERDICT_DROP ? XDP_DROP : BAE_CONTINUE;
}

/*
 * A packet of a delay class: into the agent's delay line (XDP_REDIRECT), or BAE_CONTINUE when
 * no socket holds the slot (no agent), so that it is forwarded undelayed. Inline mode only: in
 * ingress mode apply refuses delay classes, and the stack, not a peer port, is the way out.
 */
static __always_inline int policy_delay(struct xdp_md *ctx, __u32 cls)
{
	struct policy_delay_stats *ds;
	__u32 zero = 0, key;
	long verdict;

	if (bae_mode != BAE_MODE_INLINE || cls == 0 || cls >= POLICY_DELAY_CLASSES)
		return BAE_CONTINUE;
	ds = bpf_map_lookup_elem(&policy_delay_stats, &zero);
	key = ctx->ingress_ifindex * POLICY_DELAY_CLASSES + cls;
	/* The low bits of flags are the verdict when the slot is empty. */
	verdict = bpf_redirect_map(&bae_xsks, key, XDP_PASS);
	if (verdict == XDP_REDIRECT) {
		if (ds)
			ds->redirected++;
		return XDP_REDIRECT;
	}
	if (ds)
		ds->no_socket++;
	return BAE_CONTINUE;
}

/* True when the policy stage has nothing to do: no blocklist entry and no rule in the live
 * generation. bae_xdp asks this inline before it calls policy_apply, so traffic on a node
 * without policies pays two array reads instead of a call and its lookups (about 3 ns of 110
 * per forwarded frame, bench/inline-pps). */
static __always_inline int policy_idle(void)
{
	__u32 zero = 0, *used = bpf_map_lookup_elem(&policy_block_used, &zero);
	struct policy_ctl *ctl = bpf_map_lookup_elem(&policy_ctl, &zero);

	return ctl && !(used && *used) && ctl->g[ctl->gen & 1].rules == 0;
}

/*
 * The policy stage. Returns XDP_DROP, XDP_REDIRECT (delay line) or BAE_CONTINUE to let forwarding decide (a `pass`
 * verdict also continues: it only stops lower rules). Every matching rule counts its trigger
 * metric; the first rule (in decision order) that is on and decides the verdict decides it.
 * Verifier: a global function, checked once whatever state the parse and profile stages left.
 */
__noinline int policy_apply(struct xdp_md *ctx, struct pkt_meta *m)
{
	struct policy_combo_key ck = {};
	struct policy_loop loop = {};
	struct policy_stats *stats;
	struct policy_combo *combo;
	struct policy_gen_info *g;
	struct policy_ctl *ctl;
	__u32 zero = 0, gen, *used;
	__u8 proto;

	if (!m || m->parse >= BAE_PARSE_NO_L3) /* Verifier: a global function's pointer may be NULL. */
		return BAE_CONTINUE;
	stats = bpf_map_lookup_elem(&policy_stats, &zero);
	ctl = bpf_map_lookup_elem(&policy_ctl, &zero);
	if (!stats || !ctl) /* Verifier: one-entry arrays, key 0 cannot miss. */
		return BAE_CONTINUE;

	used = bpf_map_lookup_elem(&policy_block_used, &zero);
	if (used && *used && policy_blocked(m)) {
		stats->blocklist_drops++;
		return XDP_DROP;
	}

	proto = m->l4_proto;
	gen = ctl->gen & 1; /* read once: this packet sees one generation only */
	if (ctl->g[gen].rules == 0)
		return BAE_CONTINUE;

	g = &ctl->g[gen];
	ck.proto = (g->proto_bits[proto >> 6] >> (proto & 63)) & 1 ? proto : POLICY_PROTO_OTHER;
	/* Prefilters, cheapest first: a protocol or port class that no combination has cannot
	 * match, so most traffic no rule is about leaves before the hash lookups. Dimensions no rule
	 * names have class 0 everywhere: no lookup. */
	if (!((g->combo_protos[ck.proto >> 6] >> (ck.proto & 63)) & 1))
		return BAE_CONTINUE;
	if (g->port_dirs & 1) {
		__u16 c = policy_port_class(gen, 0, m->sport);

		if (!(c & POLICY_PORT_USED))
			return BAE_CONTINUE;
		ck.sport_class = c & POLICY_PORT_CLASS_MASK;
	}
	if (g->port_dirs & 2) {
		__u16 c = policy_port_class(gen, 1, m->dport);

		if (!(c & POLICY_PORT_USED))
			return BAE_CONTINUE;
		ck.dport_class = c & POLICY_PORT_CLASS_MASK;
	}
	/* An address in no prefix of its dimension has class 0: a match only if a rule without
	 * that dimension (a combination with class 0) exists. */
	ck.src_class = policy_prefix_class(g, gen, 0, &policy_src, m, m->saddr);
	if (!ck.src_class && !(g->zero_classes & 1))
		return BAE_CONTINUE;
	ck.dst_class = policy_prefix_class(g, gen, 1, &policy_dst, m, m->daddr);
	if (!ck.dst_class && !(g->zero_classes & 2))
		return BAE_CONTINUE;
	combo = policy_combo_find(g, gen, &ck);
	if (!combo)
		return BAE_CONTINUE;

	if (combo->flags & POLICY_COMBO_PLAIN)
		return policy_plain(m, combo, gen);
	loop.m = m;
	loop.combo = combo;
	loop.stats = stats;
	loop.gen = gen;
	if (combo->count == 1)
		policy_candidate(0, &loop);
	else
		bpf_loop(POLICY_MAX_CANDIDATES, policy_candidate, &loop, 0);
	if (loop.verdict == POLICY_VERDICT_DROP)
		return XDP_DROP;
	if (loop.emul_slot) {
		__u32 slot = loop.emul_slot - 1;
		struct policy_rule *r = bpf_map_lookup_elem(&policy_rules, &slot);

		struct actions_pkt pkt = {
			.frame_len = m->frame_len,
			.ip_end = m->ip_end,
			.l3_off = m->l3_off,
			.l4_off = m->l4_off,
			.parse = m->parse,
			.family = m->family,
		};

		if (r)
			actions_modify(ctx, &pkt, r);
	}
	if (loop.delay_class)
		return policy_delay(ctx, loop.delay_class);
	return BAE_CONTINUE;
}

#endif /* BAE_POLICY_H */
