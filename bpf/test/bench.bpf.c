// Fixtures of the inline benchmark (bench/inline-pps.ts): a traffic source, a far-side counter
// and the plain devmap bridge that bae's inline mode is measured against.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bae.h"

// Bridge ports: ingress ifindex -> egress ifindex. Two ports both ways; a little slack.
#define BENCH_BRIDGE_PORTS 8

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, BENCH_BRIDGE_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} bench_ports SEC(".maps");

// What the counter saw: [0] packets, [1] bytes, summed over CPUs by the reader.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} bench_counts SEC(".maps");

// Traffic source: run with BPF_PROG_RUN live frames and the ingress ifindex of a veth, every
// frame leaves through that veth and arrives at its peer.
SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

// Far-side counter: counts every frame that arrives and drops it, so the receiving stack does
// no work that would slow the measurement down.
SEC("xdp")
int bench_count(struct xdp_md *ctx)
{
	__u32 packets = 0, bytes = 1;
	__u64 *v;

	v = bpf_map_lookup_elem(&bench_counts, &packets);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(&bench_counts, &bytes);
	if (v)
		*v += ctx->data_end - ctx->data;
	return XDP_DROP;
}

// Plain devmap bridge: every frame goes to the other port, nothing else is done.
SEC("xdp")
int bench_bridge(struct xdp_md *ctx)
{
	return bpf_redirect_map(&bench_ports, ctx->ingress_ifindex, XDP_DROP);
}

// The floor of a profiling bridge: what every profiled frame costs at least, on top of the plain
// bridge. One clock read and one lookup of the frame's IPv4 conversation (bae's key and value
// types, per-CPU LRU like bae_convs), the time stored so neither can be optimised away.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bae_conv_key);
	__type(value, struct bae_conv);
} bench_convs SEC(".maps");

static const struct bae_conv bench_conv_zero;

SEC("xdp")
int bench_floor_bridge(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct bae_conv_key key = { .family = 2 };
	struct bae_conv *conv;
	__u64 now = bpf_ktime_get_ns();

	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(key.addr_a, &ip->saddr, 4);
	__builtin_memcpy(key.addr_b, &ip->daddr, 4);
	conv = bpf_map_lookup_elem(&bench_convs, &key);
	if (!conv) {
		bpf_map_update_elem(&bench_convs, &key, &bench_conv_zero, BPF_NOEXIST);
		conv = bpf_map_lookup_elem(&bench_convs, &key);
	}
	if (conv)
		conv->dir[0].last_seen_ns = now;
	return bpf_redirect_map(&bench_ports, ctx->ingress_ifindex, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
