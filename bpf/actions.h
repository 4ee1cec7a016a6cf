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

#include "actions_state.h"
#include "actions_edit.h"

/*
 * In the candidate loop, for the rule that carries out the emulation: the enum policy_action
 * that drops the packet (POLICY_ACT_RATE or POLICY_ACT_LOSS; capture records it), 0 none. The
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
			return POLICY_ACT_RATE;
	}
	if (r->action_mask & (1 << POLICY_ACT_LOSS))
		return actions_loss(&r->emul, st) ? POLICY_ACT_LOSS : 0;
	return 0;
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
