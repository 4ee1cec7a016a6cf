// Fixture for the addon tests (test/addon/): one object with every map kind the addon wraps and
// small programs whose behaviour the tests can predict byte for byte.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

// Mirrored by test/addon/collection.test.ts (structLayout) and ringbuf.test.ts (decoding).
struct fixture_event {
	__u64 seq;
	__u32 pkt_len;
	__u16 cpu;
	__u8 marker;
	__u8 pad;
};

// Knobs set before load by the tests through loadCollection({ constants }).
const volatile __u8 drop_marker = 0xee; // first payload byte that makes xdp_fixture drop
const volatile __u32 grow_by = 16;      // bytes xdp_grow appends
const volatile __s16 signed_knob = -1;  // only for range checks of constants
const volatile bool count_packets = true;

#define MARKER_OFFSET 14 // first byte after the Ethernet header

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u32);
	__type(value, __u64);
} big SEC(".maps");

// Small on purpose: tests raise max_entries before load and check it took effect.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct fixture_event);
} last_event SEC(".maps");

struct prefix_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, __u32);
} prefixes SEC(".maps");

// The kernel has no batch lookup for device maps: lookupBatch must fall back to iteration.
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

__u64 next_seq = 0;

static __always_inline void counter_add(__u32 idx)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &idx);

	if (value)
		*value += 1;
}

// Drops a frame whose first byte after the Ethernet header equals drop_marker, otherwise swaps
// the MAC addresses and bounces it (XDP_TX). Counts every frame in counters[0] per CPU.
SEC("xdp")
int xdp_fixture(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *bytes = data;
	__u8 mac[6];

	if (count_packets)
		counter_add(0);
	if (data + MARKER_OFFSET + 1 > data_end)
		return XDP_ABORTED;
	if (bytes[MARKER_OFFSET] == drop_marker)
		return XDP_DROP;
	__builtin_memcpy(mac, bytes, 6);
	__builtin_memcpy(bytes, bytes + 6, 6);
	__builtin_memcpy(bytes + 6, mac, 6);
	return XDP_TX;
}

// Emits one record per run with a sequence number and keeps a copy in last_event; XDP_PASS.
SEC("xdp")
int xdp_emit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct fixture_event rec = {}, *ev;
	__u32 zero = 0;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		return XDP_ABORTED;
	rec.seq = __sync_fetch_and_add(&next_seq, 1);
	rec.pkt_len = data_end - data;
	rec.cpu = bpf_get_smp_processor_id();
	rec.marker = data + MARKER_OFFSET + 1 <= data_end ? *((__u8 *)data + MARKER_OFFSET) : 0;
	*ev = rec;
	// Verifier: before 6.2 a map value argument may not point into ring buffer memory
	// ("R3 type=alloc_mem expected=fp, pkt, pkt_meta, map_key, map_value" on 6.1), so the
	// record is built on the stack and both the ring buffer and the map get a copy.
	bpf_map_update_elem(&last_event, &zero, &rec, BPF_ANY);
	bpf_ringbuf_submit(ev, 0);
	return XDP_PASS;
}

// Grows the frame by grow_by bytes (the kernel zero-fills them) and stamps 0xab on the first
// byte: the output must hold more than the input.
SEC("xdp")
int xdp_grow(struct xdp_md *ctx)
{
	void *data, *data_end;

	if (bpf_xdp_adjust_tail(ctx, (int)grow_by))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 1 > data_end)
		return XDP_ABORTED;
	*(__u8 *)data = 0xab;
	return XDP_PASS;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
