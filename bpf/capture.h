/* SPDX-License-Identifier: GPL-2.0 */
/*
 * capture.h: the capture action of the policy stage. Included by policy.h; kernel only. The
 * record and its bounds are in the capture section of policy_abi.h; src/reconstruct/capture.ts
 * reads the ring.
 *
 * Two steps, like the emulation actions, because the candidate loop has no packet access:
 *   capture_decide() in the loop, for the first rule that is on and has capture: whether the
 *     frame qualifies (every match, or with CAPTURE_DROPS only one this rule removed) and the
 *     sample draw;
 *   capture_emit() after the loop, with the packet: the bytes and the header to the ring.
 * Capture copies and decides nothing: the verdict and every emulation draw are the same with
 * and without it (its sampling sequence is its own, see capture_decide).
 */
#ifndef BAE_CAPTURE_H
#define BAE_CAPTURE_H

#include "actions_state.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CAPTURE_RING_BYTES);
} bae_capture SEC(".maps");

/* This CPU's record under construction. XDP never nests on one CPU: one slot is enough. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_record);
} capture_scratch SEC(".maps");

/* The capture decision of the candidate loop for capture_emit(). */
struct loop_capture {
	__u16 slot1;  /* 1 + the capturing rule's slot (< 2 * POLICY_MAX_RULES); 0: nothing to capture */
	__u16 action; /* enum policy_action to record */
};

/*
 * In the candidate loop, for each rule that is on, enforces (not monitor-only) and comes no
 * later than the one that decides (slot: its slot); only the first that captures counts. `removed` is the enum policy_action of the emulation action that removed the
 * frame (LOSS, RATE), 0 none; a rule whose verdict is drop removed it by DROP or BLOCK. Sets
 * pick to the action to record (what removed it, or POLICY_ACT_CAPTURE) when the rule captures.
 * The sample draw comes from the rule's own splitmix64 sequence (policy_act_states, scope
 * POLICY_SCOPE_CAPTURE, started from emul.capture_seed), not from the one loss and corrupt
 * draw from: sampling leaves their decisions as they are, and is reproducible from the seed.
 * Verifier: a global function, checked once, not once per state of the candidate callback.
 */
__noinline int capture_decide(struct loop_capture *pick, const struct policy_rule *r,
			      const struct pkt_meta *m, int removed, __u32 slot)
{
	struct policy_trigger_key key = {};
	struct policy_act_state *st;
	struct policy_stats *stats;
	__u32 zero = 0;

	if (!pick || !r || !m) /* Verifier: a global function's pointers may be NULL. */
		return 0;
	if (pick->slot1 || !(r->action_mask & (1 << POLICY_ACT_CAPTURE)))
		return 0;
	if (!removed && r->verdict == POLICY_VERDICT_DROP)
		removed = r->action_mask & (1 << POLICY_ACT_BLOCK) ? POLICY_ACT_BLOCK : POLICY_ACT_DROP;
	if ((r->emul.capture_flags & CAPTURE_DROPS) && !removed)
		return 0;
	if (r->emul.capture_p < POLICY_PROB_ONE) {
		key.id = r->id;
		key.scope = POLICY_SCOPE_CAPTURE;
		st = bpf_map_lookup_elem(&policy_act_states, &key);
		if (!st) {
			struct policy_act_state fresh = { .prng = r->emul.capture_seed };

			bpf_map_update_elem(&policy_act_states, &key, &fresh, BPF_NOEXIST);
			st = bpf_map_lookup_elem(&policy_act_states, &key);
			if (!st) {
				stats = bpf_map_lookup_elem(&policy_stats, &zero);
				if (stats)
					stats->act_state_full++;
				return 0;
			}
		}
		if (!actions_chance(st, r->emul.capture_p))
			return 0;
	}
	pick->slot1 = slot + 1;
	pick->action = removed ? removed : POLICY_ACT_CAPTURE;
	return 0;
}

/*
 * After the loop, before any byte changes, for the rule pick names (none: nothing): the first min(frame, snaplen) bytes and the header
 * to the ring. A full ring counts in policy_stats.capture_lost; nothing waits for room.
 * Verifier: a global function; the copy length is clamped to the scratch buffer right before
 * the copy, so that the verifier sees its bounds there.
 */
__noinline int capture_emit(struct xdp_md *ctx, const struct pkt_meta *m, const struct loop_capture *pick)
{
	struct capture_record *rec;
	struct policy_stats *stats;
	struct policy_rule *r;
	__u32 zero = 0, slot, action, len, cap;

	if (!ctx || !m || !pick || !pick->slot1)
		return 0;
	slot = pick->slot1 - 1;
	action = pick->action;
	r = bpf_map_lookup_elem(&policy_rules, &slot);
	rec = bpf_map_lookup_elem(&capture_scratch, &zero);
	stats = bpf_map_lookup_elem(&policy_stats, &zero);
	if (!r || !rec || !stats)
		return 0;
	len = bpf_xdp_get_buff_len(ctx);
	cap = r->emul.capture_snaplen;
	if (cap > len)
		cap = len;
	if (cap > CAPTURE_SNAPLEN_MAX)
		cap = CAPTURE_SNAPLEN_MAX;
	/* Verifier: bounds the copy length to 1..CAPTURE_SNAPLEN_MAX for bpf_xdp_load_bytes. Through
	 * cap - 1, because 6.1's verifier does not raise a lower bound from `cap != 0` (6.12 does):
	 * 0 wraps to a large value and fails the one unsigned test. */
	cap -= 1;
	barrier_var(cap);
	if (cap >= CAPTURE_SNAPLEN_MAX)
		return 0;
	cap += 1;
	if (bpf_xdp_load_bytes(ctx, 0, rec->data, cap))
		return 0;
	rec->hdr.time_ns = m->now_ns;
	rec->hdr.ifindex = m->ingress_ifindex;
	rec->hdr.policy_id = r->id;
	rec->hdr.orig_len = len;
	rec->hdr.cap_len = cap;
	rec->hdr.action = action;
	rec->hdr.flags = (action != POLICY_ACT_CAPTURE ? CAPTURE_REC_DROPPED : 0) |
			 (cap < len ? CAPTURE_REC_TRUNCATED : 0);
	if (bpf_ringbuf_output(&bae_capture, rec, sizeof(rec->hdr) + cap, 0))
		stats->capture_lost++;
	else
		stats->captured++;
	return 0;
}

#endif /* BAE_CAPTURE_H */
