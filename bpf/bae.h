/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bae.h: every struct, enum and constant that the XDP program shares with user space.
 *
 * User space reads them through src/datapath/abi.gen.ts, generated from the BTF of build/bpf/bae.o
 * by scripts/gen-abi.mjs (`make abi`); a stale file fails the build. Split by owner: the
 * datapath's part here, the policy engine's in policy_abi.h, the delay line's in delay_abi.h.
 *
 * Rules: fixed-width fields only, every hole filled by an explicit pad field, no tail padding.
 * Addresses are in network byte order (as on the wire); every other number is in host order.
 * Kernel-only maps, helpers and struct pkt_meta live in bae.bpf.c and parsing.h.
 */
#ifndef BAE_H
#define BAE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---- bounds ------------------------------------------------------------------------------ */

/* Constants are enums, not #defines, so that they are in the object's BTF with the structs
 * (scripts/gen-abi.mjs reads both; see struct bae_abi at the end). */
enum bae_bounds {
	/* VLAN tags (802.1Q 0x8100 or 802.1ad 0x88a8) parsed in front of the IP header; one more
	 * tag stops parsing with BAE_PARSE_VLAN_DEPTH. Two covers Q-in-Q. */
	BAE_VLAN_MAX = 2,
	/* IPv6 extension headers (hop-by-hop, routing, fragment, destination options, AH) walked
	 * before the upper-layer header; a chain longer than this stops with BAE_PARSE_EXT_DEPTH.
	 * RFC 8200 recommends at most one of each plus destination options twice, i.e. six. */
	BAE_IPV6_EXT_MAX = 6,
	/* Frame-size histogram buckets (log2): bucket 0 holds frames < 64 bytes, bucket i (1..6)
	 * holds [2^(i+5), 2^(i+6)), bucket 7 holds frames of 4096 bytes and more. */
	BAE_SIZE_BUCKETS = 8,
	/* Inter-arrival histogram buckets (decades of ns): bucket 0 holds gaps < 10 us, bucket i
	 * (1..6) holds [10^(i+3), 10^(i+4)) ns, i.e. 10-100 us ... 1-10 s, bucket 7 holds gaps of
	 * 10 s and more. Only buckets 1..7 are stored (struct bae_conv_dir iat_hist); bucket 0 is
	 * the rest of the gaps (packets - 1 per CPU copy), so the fastest packets store nothing. */
	BAE_IAT_BUCKETS = 8,
	/* TCP flags counted per direction, in the bit order of the TCP header's flag byte. */
	BAE_TCP_FLAGS = 8,
	/* XDP verdicts are counted by their action code: XDP_ABORTED 0, DROP 1, PASS 2, TX 3,
	 * REDIRECT 4. */
	BAE_VERDICTS = 5,
	/* Words of the bae_http_ports bitmap: one bit per TCP port (l7.h). */
	BAE_HTTP_PORT_WORDS = 1024,
};

/* ---- load-time knobs (const volatile in bae.bpf.c, set through loadCollection constants) -- */

/* bae_mode: what happens to a packet no later stage claimed. */
enum bae_mode {
	BAE_MODE_INGRESS = 0, /* XDP_PASS: bae watches a port; the stack gets every packet */
	BAE_MODE_INLINE = 1,  /* bump in the wire: redirect to the peer port found in bae_ports */
};

/* bae_clock: where "now" comes from. */
enum bae_clock {
	BAE_CLOCK_REAL = 0, /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, ns */
	BAE_CLOCK_TEST = 1, /* the u64 in slot 0 of the bae_test_clock array, set by tests */
};

/* ---- parse outcomes ------------------------------------------------------------------------ */

/*
 * Exactly one outcome per frame, counted in struct bae_stats.parse[]. The outcomes before
 * BAE_PARSE_NO_L3 are frames whose IP header parsed: they count in their conversation profile,
 * even when what follows is truncated or unknown. Frames that do not parse are passed on (or
 * forwarded in inline mode), never dropped.
 */
enum bae_parse {
	BAE_PARSE_TCP = 0,     /* TCP header (with options) complete */
	BAE_PARSE_UDP = 1,     /* UDP header complete */
	BAE_PARSE_ICMP = 2,    /* ICMP over IPv4: type, code, checksum present */
	BAE_PARSE_ICMPV6 = 3,  /* ICMPv6 over IPv6: type, code, checksum present */
	BAE_PARSE_FRAGMENT = 4,   /* non-first IP fragment: it carries no L4 header */
	BAE_PARSE_UNKNOWN_L4 = 5, /* another upper layer (GRE, SCTP, ESP, no-next-header, ICMP in v6) */
	BAE_PARSE_TRUNC_L4 = 6,   /* ends inside the TCP/UDP/ICMP header, TCP options included */
	BAE_PARSE_BAD_L4 = 7,     /* TCP data offset below 5 */
	BAE_PARSE_TRUNC_EXT = 8,  /* ends inside an IPv6 extension header */
	BAE_PARSE_EXT_DEPTH = 9,  /* more than BAE_IPV6_EXT_MAX IPv6 extension headers */
	BAE_PARSE_NO_L3 = 10,     /* first outcome without a usable IP header: */
	BAE_PARSE_NON_IP = 10,    /* ethertype neither IPv4 nor IPv6 (ARP, LLDP ...) */
	BAE_PARSE_TRUNC_ETH = 11, /* shorter than an Ethernet header */
	BAE_PARSE_TRUNC_VLAN = 12,  /* ends inside a VLAN tag */
	BAE_PARSE_VLAN_DEPTH = 13,  /* more than BAE_VLAN_MAX VLAN tags */
	BAE_PARSE_TRUNC_L3 = 14,    /* ends inside the IPv4 header (options included) or IPv6 header */
	BAE_PARSE_BAD_VERSION = 15, /* IP version field does not match the ethertype */
	BAE_PARSE_BAD_IHL = 16,     /* IPv4 header length field below 5 */
	BAE_PARSE_MAX = 17,
};

/* ---- global counters: map bae_stats, BPF_MAP_TYPE_PERCPU_ARRAY, one entry (key 0) ---------- */

struct bae_stats {
	__u64 verdicts[BAE_VERDICTS]; /* by XDP action code */
	__u64 parse[BAE_PARSE_MAX];   /* by enum bae_parse */
	__u64 inline_no_port;         /* inline mode, no bae_ports entry for the ingress port: passed */
	__u64 conv_full;              /* a new conversation could not be inserted: not profiled */
	__u64 flow_full;              /* a new TCP flow could not be inserted: no seq analysis */
	__u64 pad;
};

/* ---- conversation profiles: map bae_convs --------------------------------------------------- */

/*
 * A conversation is the pair of addresses of one family, both directions in one entry. The
 * lower address (compared bytewise in network order, i.e. numerically) is endpoint a:
 * dir[BAE_DIR_A_TO_B] holds what a sent to b, dir[BAE_DIR_B_TO_A] what b sent to a. A host
 * talking to itself (a == b) counts everything in a->b.
 */
enum bae_dir {
	BAE_DIR_A_TO_B = 0,
	BAE_DIR_B_TO_A = 1,
};

struct bae_conv_key {
	__u8 family; /* AF_INET (2) or AF_INET6 (10) */
	__u8 pad[3];
	__u8 addr_a[16]; /* IPv4: first 4 bytes, the other 12 zero */
	__u8 addr_b[16];
};

/*
 * One direction of a conversation. The map is per-CPU (BPF_MAP_TYPE_LRU_PERCPU_HASH): each CPU
 * updates its own copy without atomics and user space merges them (layout.ts
 * mergeConvDirs): counts and sums add, min/max/first/last combine. See docs/profiles.md.
 */
struct bae_conv_dir {
	__u64 packets;
	__u64 bytes;         /* frame bytes as on the wire (data_end - data, tshark frame.len) */
	__u64 first_seen_ns; /* clock (see enum bae_clock) at the first packet */
	__u64 last_seen_ns;  /* clock at the latest packet */
	__u64 size_sum_sq;   /* sum of squared frame lengths (their plain sum is `bytes`) */
	__u64 iat_sum_ns;    /* sum of inter-arrival times, ns (packets - 1 gaps per CPU copy) */
	/* Sum of squared inter-arrival times in units of 1024 ns ((gap_ns >> 10)^2): a shift, not
	 * a division, on the per-packet path. Gaps are capped at 2^32 units (73 min) first. */
	__u64 iat_sum_sq_1024ns;
	__u64 size_hist[BAE_SIZE_BUCKETS]; /* see BAE_SIZE_BUCKETS */
	__u64 tcp_flags[BAE_TCP_FLAGS];    /* FIN SYN RST PSH ACK URG ECE CWR: segments with it set */
	__u64 retransmits;  /* TCP segments whose end is not beyond the highest end seen */
	__u64 out_of_order; /* TCP segments that start beyond the next expected seq (a gap) */
	__u64 zero_window;  /* TCP segments advertising window 0 (not SYN, FIN or RST) */
	/* HTTP/1.x at the start of a TCP payload on an HTTP port (l7.h, docs/profiles.md): request
	 * lines, status lines, of those 4xx or 5xx, and 5xx. */
	__u64 http_requests;
	__u64 http_responses;
	__u64 http_errors;
	__u64 http_5xx;
	__u32 size_min;     /* smallest frame length */
	__u32 size_max;     /* largest frame length */
	__u8 ttl_min;       /* IPv4 TTL / IPv6 hop limit: smallest, largest, latest */
	__u8 ttl_max;
	__u8 ttl_last;
	__u8 pad[5];
	/* Inter-arrival gaps per bucket 1..7 of BAE_IAT_BUCKETS: iat_hist[i - 1] counts bucket i.
	 * Written only for gaps of 10 us and more; bucket 0 is derived (layout.ts decodeConvDir). */
	__u64 iat_hist[BAE_IAT_BUCKETS - 1];
};

struct bae_conv {
	struct bae_conv_dir dir[2]; /* by enum bae_dir */
};

/* ---- TCP flow state: map bae_tcp_flows, BPF_MAP_TYPE_LRU_HASH (shared by all CPUs) --------- */

/* Endpoint a is the lower address, or the lower port when the addresses are equal; for
 * different addresses the direction is the conversation's. */
struct bae_flow_key {
	__u8 family;
	__u8 proto; /* IPPROTO_TCP */
	__u16 port_a;
	__u16 port_b;
	__u8 pad[2];
	__u8 addr_a[16];
	__u8 addr_b[16];
};

struct bae_tcp_half {
	__u32 seq_high; /* highest end seq (seq + payload + SYN + FIN) seen = next expected seq */
	__u32 ack;      /* latest acknowledgment number sent */
	__u16 window;   /* latest window field, unscaled */
	__u8 seen;      /* 1 once a segment set seq_high */
	__u8 pad;
};

struct bae_tcp_flow {
	struct bae_tcp_half dir[2]; /* by enum bae_dir of the flow key */
};

/* The policy engine's structs and enums, then the delay line's (both named by the anchor). */
#include "policy_abi.h"
#include "delay_abi.h"

/*
 * BTF anchor. Clang keeps a type in the object's BTF only when something has that type: enums
 * used only for their constants would be missing, and so would struct policy_event (a ring
 * buffer record is no map's value type). bae.bpf.c defines one constant of this struct, so
 * that scripts/gen-abi.mjs finds every enum and struct above in build/bpf/bae.o.
 */
struct bae_abi {
	enum bae_bounds bounds;
	enum bae_mode mode;
	enum bae_clock clock;
	enum bae_parse parse;
	enum bae_dir dir;
	enum policy_bounds policy_bounds;
	enum policy_action action;
	enum policy_action_set action_set;
	enum policy_prob prob;
	enum policy_loss_model loss_model;
	enum policy_region region;
	enum policy_truncate truncate;
	enum policy_verdict verdict;
	enum policy_metric metric;
	enum policy_op op;
	enum policy_scope scope;
	enum policy_event_kind event_kind;
	enum policy_rule_flag rule_flag;
	enum policy_block_flag block_flag;
	enum policy_table table;
	enum policy_lookup_bounds lookup_bounds;
	enum policy_lookup lookup;
	enum policy_v4_layout v4_layout;
	enum policy_ports_layout ports_layout;
	enum policy_combo_layout combo_layout;
	enum policy_combo_flag combo_flag;
	enum policy_delay_bounds delay_bounds;
	enum dl_tx_bounds dl_tx_bounds;
	enum capture_bounds capture_bounds;
	enum capture_flag capture_flag;
	enum capture_record_flag capture_record_flag;
	struct policy_event event;
	struct capture_hdr capture_hdr;
};

#endif /* BAE_H */
