// A program the verifier must refuse: it reads packet memory without a bounds check.
// Only test/addon/errors.test.ts loads it, to see VerifierError and its log.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;

	return data[20] == 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
