// SPDX-License-Identifier: GPL-2.0
/* Bench baselines (bench/prog-ns.ts): an XDP program that does nothing but pass, the floor of
 * BPF_PROG_TEST_RUN, and the things every profiled packet must do at least once, alone and
 * together: read the clock and look up a conversation-sized LRU entry, and for TCP the flow's
 * entry too. The floors of a UDP and a TCP packet are what bae's cost is held against. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bae.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024); /* the bench sets the size of bae_convs */
	__type(key, struct bae_conv_key);
	__type(value, struct bae_conv);
} floor_convs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* the bench sets the size of bae_tcp_flows */
	__type(key, struct bae_flow_key);
	__type(value, struct bae_tcp_flow);
} floor_flows SEC(".maps");

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_clock(struct xdp_md *ctx)
{
	return bpf_ktime_get_ns() ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_lookup(struct xdp_md *ctx)
{
	struct bae_conv_key key = { .family = 2 };

	key.addr_a[0] = ctx->rx_queue_index; /* not a constant key: a lookup per run */
	return bpf_map_lookup_elem(&floor_convs, &key) ? XDP_PASS : XDP_DROP;
}

/* One clock read and one conversation lookup: the least a profiled UDP packet needs. */
SEC("xdp")
int xdp_floor_udp(struct xdp_md *ctx)
{
	struct bae_conv_key key = { .family = 2 };
	__u64 now = bpf_ktime_get_ns();

	key.addr_a[0] = ctx->rx_queue_index;
	return bpf_map_lookup_elem(&floor_convs, &key) && now ? XDP_PASS : XDP_DROP;
}

/* ...and the flow lookup of a TCP segment that carries data. */
SEC("xdp")
int xdp_floor_tcp(struct xdp_md *ctx)
{
	struct bae_conv_key key = { .family = 2 };
	struct bae_flow_key fkey = { .family = 2, .proto = 6 };
	__u64 now = bpf_ktime_get_ns();

	key.addr_a[0] = ctx->rx_queue_index;
	fkey.addr_a[0] = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&floor_convs, &key))
		return XDP_DROP;
	return bpf_map_lookup_elem(&floor_flows, &fkey) && now ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
