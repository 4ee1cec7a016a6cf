// Fixture of the delay line tests and benchmark (test/emulation/, bench/delay-line.ts): every
// frame goes into the AF_XDP delay line through the XSKMAP slot of its ingress port and class.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "delay_tx.h"

// Classes per port (bae.h, which delay_tx.h includes); XSKMAP key = ingress ifindex *
// DL_CLASSES_MAX + class, as in bae.o.
#define DL_CLASSES_MAX POLICY_DELAY_CLASSES
// Slots of the XSKMAP: ingress ifindexes below DL_XSK_SLOTS / DL_CLASSES_MAX (8192) fit; the
// tests size it to their ports with maxEntries, since ifindexes grow on a long-lived host.
#define DL_XSK_SLOTS 65536

#define ETH_P_IP_BE bpf_htons(0x0800)

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, DL_XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} dl_xsks SEC(".maps");

// Test steering only: the class is the low three bits of an IPv4 packet's DSCP (ping -Q 0x04 is
// class 1); everything else is class 0. The datapath chooses classes from its policy instead.
static __always_inline __u32 dl_class_of(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end || eth->h_proto != ETH_P_IP_BE)
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;
	return (ip->tos >> 2) & (DL_CLASSES_MAX - 1);
}

// Into the delay line; XDP_PASS when no socket sits in the slot (delay line not running). Also
// the delay line's transmitter (bpf/delay_tx.h).
SEC("xdp")
int dl_redirect(struct xdp_md *ctx)
{
	__u32 key;
	int act;

	if (ctx->ingress_ifindex == DL_TX_INGRESS_IFINDEX && (act = dl_tx_frame(ctx)) >= 0)
		return act; /* the delay line transmitting */
	key = ctx->ingress_ifindex * DL_CLASSES_MAX + dl_class_of(ctx);

	return bpf_redirect_map(&dl_xsks, key, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
