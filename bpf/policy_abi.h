/* SPDX-License-Identifier: GPL-2.0 */
/*
 * policy_abi.h: the policy section of bae.h, the structs and enums the policy stage (policy.h)
 * shares with user space. Included by bae.h after its own part; include bae.h, not this file.
 */
#ifndef BAE_POLICY_ABI_H
#define BAE_POLICY_ABI_H

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
	POLICY_BLOCK_PREFIXES_MAX = 16384, /* blocked prefixes (bae block ADDR/LEN) */
	POLICY_PROTECTED_MAX = 4096,       /* protected prefixes (bae protect) */
	/* Ring buffer of struct policy_event (64 bytes a record): 65536 events, 0.65 s of the agent's
	 * 100k events/s (docs/bus.md), so that a pause of the reader (GC, a busy CPU) loses none. */
	POLICY_EVENTS_BYTES = 4 * 1024 * 1024,
	POLICY_CORRUPT_BITS_MAX = 8,  /* bits one corrupt action flips in one packet */
	POLICY_ACT_STATES_MAX = 65536, /* emulation states (LRU): per rule, and per conversation for rate */
	POLICY_OFFENCES_MAX = 65536,  /* block histories of addresses (LRU), for escalation */
	/* Doublings an escalated TTL may take: with a factor of 2 or more, 1 ms reaches any maximum
	 * up to 30 days (2^32 ms is 49 days) within 32 steps; the rest is margin. */
	POLICY_ESCALATE_STEPS = 40,
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
	/* Capture (bpf/capture.h): a copy of the frame to the bae_capture ring, parameters in
	 * policy_rule.emul (capture_*). Copies only: it never changes a decision. Also the `action`
	 * of a capture record that was kept because it matched (not because it was removed). */
	POLICY_ACT_CAPTURE = 11,
	/* 12..13 free. Delay-class actions the agent's delay line carries out (user space sets
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
	/* HTTP/1.x (l7.h). The response metrics belong to the client, the response's destination:
	 * their trigger windows, blocks and events take the packet's addresses the other way round
	 * (policy_metric_reversed), so `scope: source` means "per client" for all four. */
	POLICY_METRIC_HTTP_REQUESTS = 10,
	POLICY_METRIC_HTTP_RESPONSES = 11,
	POLICY_METRIC_HTTP_ERRORS = 12,  /* 4xx and 5xx */
	POLICY_METRIC_HTTP_5XX = 13,
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
	/* Not a trigger scope: the key of a rule's capture sampling sequence in policy_act_states. */
	POLICY_SCOPE_CAPTURE = 4,
};

enum policy_event_kind {
	POLICY_EVENT_FIRE = 1,  /* a trigger crossed its threshold; value = the window sum */
	POLICY_EVENT_BLOCK = 2, /* a block action listed the source; value = expiry (clock ns) */
	POLICY_EVENT_MATCH = 3, /* an `event` action; value = frame length */
	POLICY_EVENT_REFUSED = 4,     /* a block of a protected address was refused; value = its expiry */
	POLICY_EVENT_WOULD_BLOCK = 5, /* a monitor-only rule would have blocked; value = the expiry */
};

/* policy_rule.flags */
enum policy_rule_flag {
	/* Monitor only: the rule counts, fires and sends events (a block as WOULD_BLOCK), but
	 * enforces nothing: no verdict, no block, no emulation, and lower rules still decide. */
	POLICY_RULE_MONITOR = 1,
};

/* Slot 1 of map policy_block_used: what user space has put in the prefix tables. */
enum policy_block_flag {
	POLICY_BLOCK_PREFIXES = 1,  /* policy_block_prefixes has entries */
	POLICY_BLOCK_PROTECTED = 2, /* policy_protected has entries */
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
	__u64 capture_p;    /* capture: P(a frame that qualifies is kept), the sample fraction */
	__u64 capture_seed; /* capture: start of the sampling sequence, derived from seed by user space */
	__u16 truncate_len;
	__u16 capture_snaplen; /* capture: bytes kept of a frame, 1..CAPTURE_SNAPLEN_MAX */
	__u8 loss_model;    /* enum policy_loss_model */
	__u8 corrupt_bits;  /* 1..POLICY_CORRUPT_BITS_MAX */
	__u8 corrupt_region; /* enum policy_region */
	__u8 corrupt_fix;   /* 1: checksums fixed (and header fields spared), 0: left wrong */
	__u8 truncate_mode; /* enum policy_truncate */
	__u8 truncate_fix;  /* 1: IP/UDP lengths and checksums fixed, 0: left stale */
	__u8 tcp_set;       /* TCP flag bits set, then ... */
	__u8 tcp_clear;     /* ... these cleared */
	__u8 rate_scope;    /* POLICY_SCOPE_POLICY or POLICY_SCOPE_CONVERSATION: whose bucket */
	__u8 capture_flags; /* enum capture_flag */
	__u8 pad[2];
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

/* Escalation of a block action for repeat offenders, as fail2ban's bantime.increment: the block
 * lasts block_ttl_ns x factor^n, at most max_ns, n = the address's earlier escalating blocks
 * whose memory has not lapsed (struct policy_offence). src/policy/escalate.ts computes the same. */
struct policy_escalate {
	__u64 max_ns;    /* the longest block */
	__u64 forget_ns; /* the history is forgotten this long after its latest block ended */
	__u32 factor;    /* 2..16; 0: the block does not escalate (and keeps no history) */
	__u32 pad;
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
	__u8 flags;        /* enum policy_rule_flag */
	__u8 pad[4];
	__u64 threshold;
	__u64 bucket_ns;   /* within / POLICY_WINDOW_BUCKETS */
	__u64 for_ns;      /* 0: a fired trigger stays on */
	__u64 cooldown_ns;
	__u64 block_ttl_ns;
	struct policy_emul emul; /* emulation actions (POLICY_ACT_LOSS ... RATE) */
	struct policy_escalate escalate; /* of the block action; factor 0: none */
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

/* Map policy_offences (LRU_HASH, key struct policy_block_key): an address's history of
 * escalating blocks, written by every escalating block of it, the program's block actions and
 * user space's (`bae block --escalate`, block commands) alike, so that they count as one. */
struct policy_offence {
	__u64 last_expiry_ns; /* expiry of its latest escalating block (clock ns) */
	__u32 count;          /* escalating blocks since the history last lapsed */
	__u32 pad;
};

/* Maps policy_block_prefixes (LPM_TRIE, value: expiry, clock ns, __u64) and policy_protected
 * (LPM_TRIE, value: __u32, 1). prefixlen counts family and pad (32 bits) plus the prefix. */
struct policy_block_lpm_key {
	__u32 prefixlen;
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 pad[3];
	__u8 addr[16];
};

/* Map policy_stats (PERCPU_ARRAY, one entry). */
struct policy_stats {
	__u64 blocklist_drops; /* packets dropped because their source was blocked */
	__u64 events_lost;     /* events the ring buffer had no room for */
	__u64 trigger_full;    /* trigger states that could not be created */
	__u64 act_state_full;  /* emulation states that could not be created (action skipped) */
	__u64 block_refused;   /* blocks of a protected address refused */
	__u64 captured;        /* capture records written to the bae_capture ring */
	__u64 capture_lost;    /* capture records the ring had no room for (never waited on) */
	__u64 pad;
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

/* ==== capture (bpf/capture.h, src/reconstruct/capture.ts) ==================================== */

enum capture_bounds {
	/* Bytes a record holds at most: a 1500-byte IP packet with its Ethernet header and two VLAN
	 * tags (1522), rounded up so that the record has no tail padding. */
	CAPTURE_SNAPLEN_MAX = 1536,
	CAPTURE_SNAPLEN_DEFAULT = 256,
	/* Ring buffer bae_capture, apart from policy_events so that captures never starve events:
	 * about 2600 full-size records, or 14000 of the default snaplen. */
	CAPTURE_RING_BYTES = 4 * 1024 * 1024,
};

/* policy_emul.capture_flags */
enum capture_flag {
	CAPTURE_DROPS = 1, /* keep only frames the same rule removes (drop, block, loss, rate) */
};

/* struct capture_hdr.flags */
enum capture_record_flag {
	CAPTURE_REC_DROPPED = 1,   /* the frame was removed (action says by what) */
	CAPTURE_REC_TRUNCATED = 2, /* cap_len < orig_len: the snaplen cut it */
};

/* A record of ring buffer bae_capture: this header, then cap_len bytes of the frame from its
 * Ethernet header on, as it arrived (before truncate, corrupt or tcp-flags changed it). */
struct capture_hdr {
	__u64 time_ns;   /* clock (enum bae_clock) when the packet arrived */
	__u32 ifindex;   /* arrival interface */
	__u32 policy_id; /* stable id of the rule that captured it */
	__u32 orig_len;  /* frame length on the wire */
	__u16 cap_len;   /* bytes that follow: min(orig_len, snaplen) */
	__u8 action;     /* enum policy_action: what removed it (DROP, BLOCK, LOSS, RATE), or CAPTURE */
	__u8 flags;      /* enum capture_record_flag */
};

/* The per-CPU scratch a record is built in (bpf_ringbuf_output sends its first bytes). */
struct capture_record {
	struct capture_hdr hdr;
	__u8 data[CAPTURE_SNAPLEN_MAX];
};

#endif /* BAE_POLICY_ABI_H */
