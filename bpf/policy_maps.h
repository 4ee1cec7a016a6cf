/* SPDX-License-Identifier: GPL-2.0 */
/*
 * policy_maps.h: the maps of the policy stage (policy.h), written by src/policy/apply.ts and
 * the agent. Their key and value structs are in the policy section of bae.h. Kernel only.
 */
#ifndef BAE_POLICY_MAPS_H
#define BAE_POLICY_MAPS_H

#include "bae.h"
#include "parsing.h"

#define POLICY_TCP 6
#define POLICY_ICMP 1
#define POLICY_ICMPV6 58
#define POLICY_TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_ctl);
} policy_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POLICY_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* LPM tries must not be preallocated */
	__type(key, struct policy_lpm_key);
	__type(value, __u32);
} policy_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POLICY_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_lpm_key);
	__type(value, __u32);
} policy_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * 2 * POLICY_MAX_PREFIXES);
	__type(key, struct policy_prefix_key);
	__type(value, __u32);
} policy_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 2 * POLICY_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct policy_port_classes);
} policy_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 2 * POLICY_V4_REGION);
	__type(key, __u32);
	__type(value, struct policy_v4_chunk);
} policy_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POLICY_COMBO_SLOTS);
	__type(key, __u32);
	__type(value, struct policy_combo_slot);
} policy_combos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_rule);
} policy_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_TRIGGERS_MAX);
	__type(key, struct policy_trigger_key);
	__type(value, struct policy_trigger);
} policy_triggers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_counters);
} policy_counters SEC(".maps");

/* Written by user space only (see bae.h): counts of retired generations by stable id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * POLICY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct policy_counters);
} policy_counter_base SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_BLOCKLIST_MAX);
	__type(key, struct policy_block_key);
	__type(value, __u64);
} policy_blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POLICY_OFFENCES_MAX);
	__type(key, struct policy_block_key);
	__type(value, struct policy_offence);
} policy_offences SEC(".maps");

/* Slot 0 turns 1 when a source or a prefix is first blocked (by the program, by `bae block`
 * ADDR or ADDR/LEN): until then the stage skips the blocklist lookup (a hash lookup, most of
 * what the stage costs when no rule is on), and policy_idle the whole stage. It only ever goes
 * from 0 to 1. Slot 1 holds enum policy_block_flag, written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} policy_block_used SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_BLOCK_PREFIXES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_block_lpm_key);
	__type(value, __u64);
} policy_block_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_PROTECTED_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_block_lpm_key);
	__type(value, __u32);
} policy_protected SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_stats);
} policy_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, POLICY_EVENTS_BYTES);
} policy_events SEC(".maps");

/* Delay-class actions (bae.h delay section): the agent's AF_XDP sockets, key ingress ifindex *
 * POLICY_DELAY_CLASSES + class. The loader sizes it for the ports' ifindexes. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} bae_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_delay_stats);
} policy_delay_stats SEC(".maps");

#endif /* BAE_POLICY_MAPS_H */
