// SPDX-License-Identifier: GPL-2.0
/*
 * inject.bpf.c: the sender of `bae inject` and `bae reconstruct` (src/reconstruct/inject-send.ts).
 *
 * User space runs this program through BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES and the
 * ingress ifindex of the port the frames must leave by. Under live frames the kernel turns
 * XDP_TX into a redirect back to that device, so every run puts the frame, byte-exact, on the
 * wire of that port (for a veth: into its peer). The program looks at nothing: a malformed
 * frame is the point, and it must not be "fixed" or refused here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int inject_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
