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

#include "policy_maps.h"
/* The emulation actions: actions_decide(), actions_modify(). After the maps: they count in
 * policy_stats. */
#include "actions.h"
/* The capture action: capture_decide(), capture_emit(). */
#include "capture.h"
#include "policy_trigger.h"
#include "policy_match.h"

/* State of the candidate loop, shared with its bpf_loop callback. */
struct policy_loop {
	struct pkt_meta *m;
	struct policy_combo *combo;
	struct policy_stats *stats;
	__u32 gen;
	int verdict; /* enum policy_verdict, set by the first rule that is on and decides */
	/* 16 bits each (classes < POLICY_DELAY_CLASSES, slots < 2 * POLICY_MAX_RULES): with the
	 * capture pick this struct stays at 40 bytes, and policy_apply's stack frame at 160. 6.1
	 * rounds each frame of a call chain to 32 bytes and refuses a chain over 512: bae_xdp ->
	 * policy_apply -> policy_candidate -> actions_decide is 128 + 160 + 128 + 96 there. */
	__u16 delay_class; /* set by the first rule that is on and has one, before any decided */
	__u16 emul_slot;   /* 1 + rule slot of the first such rule with emulation actions; 0 none */
	struct loop_capture capture; /* the first such rule that captures this frame (capture.h) */
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
	int on, removed = 0;

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
		policy_event_emit(m, r, POLICY_EVENT_MATCH, m->frame_len, l->stats);
	if (r->action_mask & (1 << POLICY_ACT_BLOCK))
		policy_block(m, r, cnt, l->stats);
	if (r->flags & POLICY_RULE_MONITOR) /* enforces nothing; lower rules go on deciding */
		return 0;
	if (r->delay_class && !l->delay_class)
		l->delay_class = r->delay_class;
	l->verdict = r->verdict;
	/* Emulation (actions.h): rate and loss decide here; a loss ends the walk like a drop. */
	if (!l->emul_slot && (r->action_mask & POLICY_EMUL_ACTIONS)) {
		l->emul_slot = slot + 1;
		removed = actions_decide(r, m);
		if (removed)
			l->verdict = POLICY_VERDICT_DROP;
	}
	/* Capture (capture.h): what this rule removed, or any frame it applies to. Verifier: one
	 * call whatever the rule has, no branch here (each would double the callback's states). */
	capture_decide(&l->capture, r, m, removed, slot);
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
 * without policies pays two array reads instead of a call and its lookups. Blocked prefixes
 * need no read of their own: user space sets slot 0 of policy_block_used before the first one
 * (src/policy/prefix-blocks.ts), so `used` covers them (a third read cost about 0.8 ns a frame
 * in place, bench/inline-pps). */
static __always_inline int policy_idle(void)
{
	__u32 zero = 0, *used = bpf_map_lookup_elem(&policy_block_used, &zero);
	struct policy_ctl *ctl = bpf_map_lookup_elem(&policy_ctl, &zero);

	return ctl && used && !*used && ctl->g[ctl->gen & 1].rules == 0;
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
	__u32 zero = 0, one = 1, gen, *used, *flags;
	__u8 proto;

	if (!m || m->parse >= BAE_PARSE_NO_L3) /* Verifier: a global function's pointer may be NULL. */
		return BAE_CONTINUE;
	stats = bpf_map_lookup_elem(&policy_stats, &zero);
	ctl = bpf_map_lookup_elem(&policy_ctl, &zero);
	if (!stats || !ctl) /* Verifier: one-entry arrays, key 0 cannot miss. */
		return BAE_CONTINUE;

	used = bpf_map_lookup_elem(&policy_block_used, &zero);
	flags = bpf_map_lookup_elem(&policy_block_used, &one);
	if (used && flags && (*used || *flags) && policy_blocked(m, *used, *flags)) {
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
	/* Before the verdict and before actions_modify: the frame as it arrived. Verifier: called
	 * whatever loop.capture holds (slot1 0: nothing to capture), so that the rest of this
	 * function is not checked twice, once per outcome of a test here. */
	capture_emit(ctx, m, &loop.capture);
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
