/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bae.h: every struct, enum and constant that the XDP program shares with user space.
 *
 * Mirrored in TypeScript by src/datapath/layout.ts; test/bpf/layout.test.ts checks every struct's
 * size and field offsets there against the BTF of build/bpf/bae.o. Change both together.
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
	/* TCP flags counted per direction, in the bit order of the TCP header's flag byte. */
	BAE_TCP_FLAGS = 8,
	/* XDP verdicts are counted by their action code: XDP_ABORTED 0, DROP 1, PASS 2, TX 3,
	 * REDIRECT 4. */
	BAE_VERDICTS = 5,
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
	__u32 size_min;     /* smallest frame length */
	__u32 size_max;     /* largest frame length */
	__u8 ttl_min;       /* IPv4 TTL / IPv6 hop limit: smallest, largest, latest */
	__u8 ttl_max;
	__u8 ttl_last;
	__u8 pad[5];
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

/* ==== policy engine ===========================================================================
 * Owned by the policy engine (bpf/policy.h, src/policy/); mirrored by the policy section of
 * src/datapath/layout.ts. The tables, the per-packet algorithm and the window arithmetic are
 * described in docs/policies.md; src/policy/reference.ts is the same semantics in TypeScript.
 */

/* Capacities per generation; every table exists twice (generation 0 and 1) so that an apply
 * writes the idle one and flips. src/policy/compile.ts DEFAULT_LIMITS repeats them. */
enum policy_bounds {
	POLICY_MAX_RULES = 16384,     /* policies */
	POLICY_MAX_PREFIXES = 16384,  /* distinct src (and dst) prefixes */
	POLICY_MAX_COMBOS = 65536,    /* (proto, src, dst, sport, dport class) combinations */
	POLICY_MAX_CANDIDATES = 8,    /* rules one combination may list: the per-packet loop bound */
	POLICY_WINDOW_BUCKETS = 8,    /* a trigger window of `within` is 8 buckets of within/8 */
	POLICY_PORTS = 65536,
	POLICY_PROTO_OTHER = 255,     /* proto class of every protocol no rule names */
	POLICY_TRIGGERS_MAX = 65536,  /* trigger states (LRU) */
	POLICY_BLOCKLIST_MAX = 65536, /* blocked sources (LRU) */
	POLICY_EVENTS_BYTES = 256 * 1024, /* ring buffer of struct policy_event */
	POLICY_CORRUPT_BITS_MAX = 8,  /* bits one corrupt action flips in one packet */
	POLICY_ACT_STATES_MAX = 65536, /* emulation states (LRU): per rule, and per conversation for rate */
};

/* Bits of policy_rule.action_mask; src/policy/actions.ts holds the same table. */
enum policy_action {
	POLICY_ACT_PASS = 0,
	POLICY_ACT_DROP = 1,
	POLICY_ACT_BLOCK = 2,
	POLICY_ACT_COUNT = 3,
	POLICY_ACT_EVENT = 4,
	POLICY_ACT_DELAY = 5, /* delay class: through the delay line (see policy_rule.delay_class) */
	/* Emulation actions (bpf/actions.h), parameters in policy_rule.emul. Carried out for a packet
	 * by the first rule in decision order that is on, has any of them and comes before the rule
	 * that decides; in the order rate -> loss -> truncate -> corrupt -> tcp-flags. */
	POLICY_ACT_LOSS = 6,
	POLICY_ACT_CORRUPT = 7,
	POLICY_ACT_TRUNCATE = 8,
	POLICY_ACT_TCP_FLAGS = 9,
	POLICY_ACT_RATE = 10,
	/* 11..13 free. Delay-class actions the agent's delay line carries out (user space sets
	 * delay_class; the kernel never tests these bits). */
	POLICY_ACT_DUPLICATE = 14,
	POLICY_ACT_REORDER = 15,
};

/* Sets of policy_action bits. */
enum policy_action_set {
	POLICY_EMUL_DECIDE = (1 << POLICY_ACT_LOSS) | (1 << POLICY_ACT_RATE),
	POLICY_EMUL_MODIFY = (1 << POLICY_ACT_CORRUPT) | (1 << POLICY_ACT_TRUNCATE) | (1 << POLICY_ACT_TCP_FLAGS),
	POLICY_EMUL_ACTIONS = POLICY_EMUL_DECIDE | POLICY_EMUL_MODIFY,
	/* Actions that draw from the rule's random sequence or keep state in policy_act_states. */
	POLICY_EMUL_STATEFUL = (1 << POLICY_ACT_LOSS) | (1 << POLICY_ACT_CORRUPT) | (1 << POLICY_ACT_RATE),
};

/* Probabilities are fractions of 2^32: an event of probability p happens when a 32-bit random
 * number is below p, so 0 never and POLICY_PROB_ONE (2^32) always. An enum holds an int, so
 * BTF carries the exponent and the value is derived from it on both sides. */
enum policy_prob {
	POLICY_PROB_BITS = 32,
};
#define POLICY_PROB_ONE (1ULL << POLICY_PROB_BITS)

enum policy_loss_model {
	POLICY_LOSS_RANDOM = 0,  /* loss_p, with loss_corr the chance to repeat the last decision */
	POLICY_LOSS_GILBERT = 1, /* Gilbert-Elliott: loss_p = p (good->bad), loss_corr = r (bad->good),
				  * loss_bad = 1-h, loss_good = 1-k, as netem's gemodel */
};

/* Where corrupt flips bits (offsets from the frame start, all ending at the IP packet's end). */
enum policy_region {
	POLICY_REGION_ANY = 0,       /* IP header to end */
	POLICY_REGION_IP = 1,        /* IP header with options / IPv6 extension headers */
	POLICY_REGION_TRANSPORT = 2, /* TCP header with options, UDP 8, ICMP/ICMPv6 4 bytes */
	POLICY_REGION_PAYLOAD = 3,   /* after the transport header */
};

enum policy_truncate {
	POLICY_TRUNCATE_TO = 0, /* to truncate_len bytes */
	POLICY_TRUNCATE_BY = 1, /* by truncate_len bytes, not below an Ethernet header */
};

/* What a rule decides when it applies; NONE lets lower rules decide. */
enum policy_verdict {
	POLICY_VERDICT_NONE = 0,
	POLICY_VERDICT_PASS = 1,
	POLICY_VERDICT_DROP = 2,
};

/* Trigger metrics (src/policy/metrics.ts); 0: the rule has no trigger. */
enum policy_metric {
	POLICY_METRIC_NONE = 0,
	POLICY_METRIC_PACKETS = 1,
	POLICY_METRIC_BYTES = 2,
	POLICY_METRIC_TCP_SYN = 3, /* SYN set, ACK clear */
	POLICY_METRIC_TCP_RST = 4,
	POLICY_METRIC_TCP_FIN = 5,
	POLICY_METRIC_TCP_RETRANSMITS = 6,
	POLICY_METRIC_OUT_OF_ORDER = 7,
	POLICY_METRIC_ICMP_UNREACHABLE = 8,
	POLICY_METRIC_NEW_CONVERSATIONS = 9,
};

enum policy_op {
	POLICY_OP_GT = 0,
	POLICY_OP_GE = 1,
};

/* Whose packets one trigger window counts. */
enum policy_scope {
	POLICY_SCOPE_POLICY = 0,       /* every packet the policy matches */
	POLICY_SCOPE_SOURCE = 1,       /* per source address */
	POLICY_SCOPE_DESTINATION = 2,  /* per destination address */
	POLICY_SCOPE_CONVERSATION = 3, /* per address pair, lower address first (like bae_convs) */
};

enum policy_event_kind {
	POLICY_EVENT_FIRE = 1,  /* a trigger crossed its threshold; value = the window sum */
	POLICY_EVENT_BLOCK = 2, /* a block action listed the source; value = expiry (clock ns) */
	POLICY_EVENT_MATCH = 3, /* an `event` action; value = frame length */
};

/* Tables of a generation, in the order of policy_gen_info.digests. */
enum policy_table {
	POLICY_TABLE_SRC = 0, /* policy_src and the source entries of policy_prefixes */
	POLICY_TABLE_DST = 1,
	POLICY_TABLE_PORTS = 2,
	POLICY_TABLE_COMBOS = 3,
	POLICY_TABLE_RULES = 4,
	POLICY_TABLES = 5,
};

/* How a dimension (source or destination address) of one family is looked up. IPv4 goes to
 * the direct tables of policy_v4 (at most three array reads) while their chunks suffice; IPv6,
 * and IPv4 sets that need more chunks, use policy_prefixes (one hash lookup per distinct prefix
 * length, longest first) when the rules use at most POLICY_HASH_LENGTHS lengths, else the LPM
 * trie. Measured on the 2-CPU VM (bench/policy-ns.ts): an array read ~1-2 ns, a hash lookup
 * ~20-30 ns, a trie lookup among 10k /24s ~75 ns. */
enum policy_lookup_bounds {
	POLICY_HASH_LENGTHS = 4,
};

enum policy_lookup {
	POLICY_LOOKUP_NONE = 0, /* no rule names a prefix of this family here: class 0 */
	POLICY_LOOKUP_HASH = 1, /* policy_prefixes, per length in lens[] */
	POLICY_LOOKUP_TRIE = 2, /* policy_src / policy_dst */
	POLICY_LOOKUP_V4 = 3,   /* policy_v4 (IPv4 only) */
};

/* Map policy_v4 (ARRAY of struct policy_v4_chunk): IPv4 prefix classes as direct tables, a
 * region of POLICY_V4_REGION chunks per (generation, dimension) at index (gen * 2 + dim) *
 * POLICY_V4_REGION. Chunk t < 256 of a region holds the entries of the 256 /16s under top byte
 * t; an entry is a class, or POLICY_V4_CHUNK | c: look the next address byte up in chunk c of
 * the region (the /24s of a /16, then the addresses of a /24). So an address costs at most three
 * array reads, whatever the number of prefixes. */
enum policy_v4_layout {
	POLICY_V4_REGION = 1024,
	POLICY_V4_INDEX_MASK = POLICY_V4_REGION - 1,
	POLICY_V4_CHUNK_BIT = 31, /* an enum holds an int: BTF carries the bit, not the mask */
};
#define POLICY_V4_CHUNK (1U << POLICY_V4_CHUNK_BIT)

struct policy_v4_chunk {
	__u32 cls[256];
};

struct policy_dim {
	__u8 mode;                      /* enum policy_lookup */
	__u8 count;                     /* lengths in lens[] */
	__u8 lens[POLICY_HASH_LENGTHS]; /* distinct prefix lengths, longest first */
	__u8 pad[2];
};

/* Map policy_ctl (ARRAY, one entry): the active generation, read once per packet. */
struct policy_gen_info {
	__u32 rules;         /* rules in this generation; 0: the stage only checks the blocklist */
	__u8 port_dirs;      /* bit 0: some rule names source ports, bit 1: destination ports */
	__u8 zero_classes;   /* bit 0: some combination has source class 0, bit 1: destination */
	__u8 pad[2];
	__u64 proto_bits[4]; /* bit p: some rule names IP protocol p */
	__u64 combo_protos[4]; /* bit c: some combination has proto class c (a prefilter) */
	struct policy_dim dims[2][2]; /* [0 source, 1 destination][0 IPv4, 1 IPv6] */
	__u32 combo_mask;  /* buckets of the combination table - 1 (a power of two - 1) */
	__u32 combo_seed;  /* of policy_combo_hash */
	__u32 combo_epoch; /* slots of this generation's table carry it */
	__u32 pad2;
	/* User space only: a digest of what each table holds for this generation (0: unknown), so
	 * that an apply skips tables whose content would not change. */
	__u64 digests[POLICY_TABLES];
};

struct policy_ctl {
	__u32 gen;    /* 0 or 1 */
	__u32 pad;
	__u64 flip_ns; /* CLOCK_MONOTONIC of the last flip, written by user space */
	struct policy_gen_info g[2];
};

/* Map policy_prefixes (HASH): prefix -> prefix class (__u32), for dimensions in
 * POLICY_LOOKUP_HASH mode; the address is masked to len bits. */
struct policy_prefix_key {
	__u8 gen;
	__u8 dim;    /* 0 source, 1 destination */
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 len;
	__u8 addr[16];
};

/* Maps policy_src / policy_dst (LPM_TRIE), for dimensions in POLICY_LOOKUP_TRIE mode: longest
 * inserted prefix -> prefix class (__u32). prefixlen counts gen and family (16 bits) plus the
 * address prefix. */
struct policy_lpm_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	__u8 pad[2];
};

/* Map policy_ports (ARRAY of struct policy_port_classes): the classes of 256 consecutive ports
 * per entry, index ((gen * 2 + dir) * POLICY_PORT_ENTRIES + port / 256), dir 0 for the source
 * port, 1 for the destination port. 256 to an entry: an apply writes 512 entries of 512 bytes;
 * the kernel's batch update costs about 1 us per entry here, whatever its size. */
enum policy_ports_layout {
	POLICY_PORTS_PER_ENTRY = 256,
	POLICY_PORT_ENTRIES = POLICY_PORTS / POLICY_PORTS_PER_ENTRY,
	/* Set on a port's class when some combination has that class: a port whose class has none
	 * cannot match, and the prefix and combination lookups are skipped (a prefilter). */
	POLICY_PORT_USED = 0x8000,
	POLICY_PORT_CLASS_MASK = 0x7FFF,
};

struct policy_port_classes {
	__u16 cls[POLICY_PORTS_PER_ENTRY]; /* class | POLICY_PORT_USED */
};

/* Map policy_combos (ARRAY of struct policy_combo_slot): the candidate rules of one combination
 * of classes, in a cuckoo table that user space builds (src/policy/combo-table.ts): buckets of
 * POLICY_COMBO_WAYS slots, a generation's region of POLICY_COMBO_SLOTS slots at gen *
 * POLICY_COMBO_SLOTS. A key lives in bucket h & mask or (h >> 16) & mask, h =
 * policy_combo_hash(key, seed); a slot counts only when its epoch is the generation's (older
 * slots are left in place, never cleared). Buckets fill from slot 0 and a first bucket with a
 * free slot means the key is not in the second: at most 2 x 4 array reads, no hash map. */
enum policy_combo_layout {
	POLICY_COMBO_WAYS = 4,
	POLICY_COMBO_SLOTS = 2 * POLICY_MAX_COMBOS,
};

struct policy_combo_key {
	__u8 gen;
	__u8 proto;        /* the protocol, or POLICY_PROTO_OTHER */
	__u16 sport_class;
	__u16 dport_class;
	__u16 pad;
	__u32 src_class;
	__u32 dst_class;
};

struct policy_combo {
	__u16 count;                         /* used slots, at most POLICY_MAX_CANDIDATES */
	__u16 slots[POLICY_MAX_CANDIDATES];  /* rule slots in decision order */
	__u16 flags;                         /* POLICY_COMBO_* */
};

/* policy_combo.flags */
enum policy_combo_flag {
	/* Every candidate is plain: no trigger, no delay class, no action but pass, drop and count.
	 * The program then walks them inline instead of through bpf_loop's callback (a call per
	 * rule). */
	POLICY_COMBO_PLAIN = 1,
};

struct policy_combo_slot {
	struct policy_combo_key key; /* gen 0: the table of either generation is the same */
	__u32 epoch;                 /* the slot is in use when it equals policy_gen_info.combo_epoch */
	struct policy_combo combo;
};

/* Parameters of the emulation actions (bpf/actions.h, src/policy/actions.ts emulParams); a field
 * is read only when its action's bit is set. Probabilities in units of 2^-32 (POLICY_PROB_ONE). */
struct policy_emul {
	__u64 seed;         /* start of the rule's random sequence (splitmix64) */
	__u64 loss_p;       /* random: P(loss); Gilbert-Elliott: p */
	__u64 loss_corr;    /* random: P(repeat the previous decision); Gilbert-Elliott: r */
	__u64 loss_bad;     /* Gilbert-Elliott: P(loss) in the bad state (1-h) */
	__u64 loss_good;    /* Gilbert-Elliott: P(loss) in the good state (1-k) */
	__u64 corrupt_p;
	__u64 rate_bps;     /* bits per second */
	__u64 rate_cap;     /* burst bytes * 8 * 1e9: the bucket size in bit-nanoseconds */
	__u64 rate_full_ns; /* time to fill an empty bucket: ceil(rate_cap / rate_bps) */
	__u16 truncate_len;
	__u8 loss_model;    /* enum policy_loss_model */
	__u8 corrupt_bits;  /* 1..POLICY_CORRUPT_BITS_MAX */
	__u8 corrupt_region; /* enum policy_region */
	__u8 corrupt_fix;   /* 1: checksums fixed (and header fields spared), 0: left wrong */
	__u8 truncate_mode; /* enum policy_truncate */
	__u8 truncate_fix;  /* 1: IP/UDP lengths and checksums fixed, 0: left stale */
	__u8 tcp_set;       /* TCP flag bits set, then ... */
	__u8 tcp_clear;     /* ... these cleared */
	__u8 rate_scope;    /* POLICY_SCOPE_POLICY or POLICY_SCOPE_CONVERSATION: whose bucket */
	__u8 pad[5];
};

/* Map policy_act_states (LRU_HASH), keyed like the trigger windows (struct policy_trigger_key):
 * scope POLICY holds a rule's random sequence, loss state and per-policy bucket; scope
 * CONVERSATION a per-conversation bucket. Created by the first packet with the rule's seed and
 * a full bucket; deleted by the apply that removes the policy. */
struct policy_act_state {
	__u64 prng;      /* splitmix64 state */
	__u64 credit;    /* rate: bucket content, bit-nanoseconds */
	__u64 last_ns;   /* rate: clock of the last refill */
	__u8 loss_last;  /* random loss: 1 when the previous decision was a loss */
	__u8 ge_bad;     /* Gilbert-Elliott: 1 in the bad state */
	__u8 pad[6];
};

/* Map policy_rules (ARRAY): index gen * POLICY_MAX_RULES + slot. */
struct policy_rule {
	__u32 id;          /* stable id (name + content); keys triggers and counters */
	__u32 action_mask; /* bits of enum policy_action */
	__u32 ifindex;     /* arrival interface; 0: any */
	__u8 verdict;      /* enum policy_verdict */
	__u8 tcp_flags_mask;
	__u8 tcp_flags_value;
	__u8 metric;       /* enum policy_metric */
	__u8 op;           /* enum policy_op */
	__u8 scope;        /* enum policy_scope */
	__u8 delay_class;  /* delay section below: 0 none, else the delay line's class */
	__u8 pad[5];
	__u64 threshold;
	__u64 bucket_ns;   /* within / POLICY_WINDOW_BUCKETS */
	__u64 for_ns;      /* 0: a fired trigger stays on */
	__u64 cooldown_ns;
	__u64 block_ttl_ns;
	struct policy_emul emul; /* emulation actions (POLICY_ACT_LOSS ... RATE) */
};

/* Map policy_triggers (LRU_HASH): one sliding window per (rule, scope key). */
struct policy_trigger_key {
	__u32 id;
	__u8 scope;
	__u8 family;
	__u8 pad[2];
	__u8 addr_a[16]; /* source / destination / lower address; zero for POLICY_SCOPE_POLICY */
	__u8 addr_b[16]; /* higher address of a conversation; zero otherwise */
};

struct policy_trigger {
	__u64 bucket_base;    /* index (now / bucket_ns) of the newest bucket */
	__u64 fired_until;    /* the actions apply while now < fired_until */
	__u64 cooldown_until; /* no new fire before this */
	__u64 counts[POLICY_WINDOW_BUCKETS]; /* slot = bucket index % POLICY_WINDOW_BUCKETS */
};

/* Map policy_counters (PERCPU_ARRAY): index gen * POLICY_MAX_RULES + slot, like policy_rules,
 * so the per-packet update is an inlined array access. A policy's counters are carried across
 * applies by stable id: before an apply reuses the idle generation, user space adds that
 * generation's counts to map policy_counter_base (HASH, id -> struct policy_counters, never
 * touched by the kernel) for the policies still in the set, and zeroes the slots. A policy's
 * total = its base + its slots in both generations. */
struct policy_counters {
	__u64 matched; /* packets the match selected */
	__u64 applied; /* packets the actions were applied to */
	__u64 fired;   /* trigger fires */
	__u64 blocks;  /* blocklist entries written */
};

/* Map policy_blocklist (LRU_HASH): source -> expiry (clock ns, __u64). Checked before the rules. */
struct policy_block_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* Map policy_stats (PERCPU_ARRAY, one entry). */
struct policy_stats {
	__u64 blocklist_drops; /* packets dropped because their source was blocked */
	__u64 events_lost;     /* events the ring buffer had no room for */
	__u64 trigger_full;    /* trigger states that could not be created */
	__u64 act_state_full;  /* emulation states that could not be created (action skipped) */
};

/* Ring buffer policy_events. */
struct policy_event {
	__u64 time_ns;
	__u64 value;
	__u32 policy_id;
	__u8 kind;   /* enum policy_event_kind */
	__u8 scope;  /* enum policy_scope of the rule */
	__u8 family;
	__u8 pad;
	__u8 addr_a[16]; /* the packet's source */
	__u8 addr_b[16]; /* the packet's destination */
};

/* ---- delay-class actions (delay, duplicate, reorder) ----------------------------------------
 * Owned by the agent (src/agent/, docs/agent.md). Inline mode only. A packet whose deciding rule
 * is on and has a delay_class goes to map bae_xsks at key ingress ifindex * POLICY_DELAY_CLASSES
 * + class, where the agent's delay line (addon/delay_line/) holds it and sends it on the other
 * port; with no socket in the slot it is forwarded as usual and counted. Class 0 is "no delay":
 * the classes of a policy set are 1..POLICY_DELAY_CLASSES - 1 (src/policy/compile.ts). */
enum policy_delay_bounds {
	POLICY_DELAY_CLASSES = 8, /* XSKMAP slots per port */
};

/* Map policy_delay_stats (PERCPU_ARRAY, one entry). */
struct policy_delay_stats {
	__u64 redirected; /* packets handed to the delay line */
	__u64 no_socket;  /* packets of a delay class forwarded undelayed: no agent holds the slot */
};

/* ==== end of the policy engine section ======================================================= */

/* ==== the delay line's transmitter ===========================================================
 * Kernel side: bpf/delay_tx.h (the maps dl_tx_slots and dl_tx_ctl, and dl_tx_frame(), which the
 * program that feeds the delay line runs first). User space: the addon's delay line
 * (addon/delay_line/live_tx.cc) includes this header, checks the maps' value sizes against these
 * structs when a line opens, and writes a batch of frames into the memory-mapped slots before
 * each BPF_PROG_RUN; src/emulation/delay-line.ts only names the maps. docs/emulation.md,
 * "Transmission", describes the path.
 */
enum dl_tx_bounds {
	/* The ingress device of the delay line's BPF_PROG_RUN calls, by which dl_tx_frame() knows
	 * them: every namespace's loopback device has ifindex 1. */
	DL_TX_INGRESS_IFINDEX = 1,
	/* Frames per BPF_PROG_RUN call: the thread's TX batch (kTxBatch, addon/delay_line/line.h). */
	DL_TX_SLOTS = 256,
	/* Longest frame this path sends: a live frame is one page holding the kernel's frame header,
	 * XDP's 256 bytes of headroom and the tailroom an skb would need; 3072 bytes fit with room
	 * to spare. Longer frames (4096-byte UMEM frames hold up to 3840) leave through the socket. */
	DL_TX_DATA_MAX = 3072,
};

/* Map dl_tx_slots (ARRAY, BPF_F_MMAPABLE, DL_TX_SLOTS entries): the frames of one call. */
struct dl_tx_slot {
	__u32 len;
	__u32 ifindex; /* egress */
	__u8 data[DL_TX_DATA_MAX];
};

/* Map dl_tx_ctl (ARRAY, BPF_F_MMAPABLE, one entry): where the current call is. */
struct dl_tx_ctl {
	__u32 next;   /* slot of the next run; the thread sets it to 0 before each call */
	__u32 count;  /* slots filled for this call; 0 outside it */
	__u64 failed; /* runs whose frame could not be made (the thread counts them as dropped) */
};

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
	enum policy_table table;
	enum policy_lookup_bounds lookup_bounds;
	enum policy_lookup lookup;
	enum policy_v4_layout v4_layout;
	enum policy_ports_layout ports_layout;
	enum policy_combo_layout combo_layout;
	enum policy_combo_flag combo_flag;
	enum policy_delay_bounds delay_bounds;
	enum dl_tx_bounds dl_tx_bounds;
	struct policy_event event;
};

#endif /* BAE_H */
