/* SPDX-License-Identifier: GPL-2.0 */
/*
 * parsing.h: cursor-based header parsers of the bae XDP program, and struct pkt_meta, the
 * parsed-packet metadata every later stage (profiles, policy) reads. Kernel only.
 *
 * Each parser takes the cursor, checks `ptr + size > end` right before it reads, advances the
 * cursor past its header and returns the next protocol (ethertype or IP protocol number, >= 0),
 * or minus the enum bae_parse outcome that stops parsing (all stopping outcomes are > 0).
 */
#ifndef BAE_PARSING_H
#define BAE_PARSING_H

#include "bae.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define BAE_ETH_P_IP 0x0800
#define BAE_ETH_P_IPV6 0x86DD
#define BAE_ETH_P_8021Q 0x8100
#define BAE_ETH_P_8021AD 0x88A8

/* IPv6 extension headers (RFC 8200 4.1, RFC 4302). */
#define BAE_IPV6_HOPOPTS 0
#define BAE_IPV6_ROUTING 43
#define BAE_IPV6_FRAGMENT 44
#define BAE_IPV6_AH 51
#define BAE_IPV6_DSTOPTS 60
#define BAE_IPPROTO_ICMPV6 58

#define BAE_IP_MF 0x2000     /* IPv4 more-fragments flag */
#define BAE_IP_OFFSET 0x1FFF /* IPv4 fragment offset */
#define BAE_IP6_MF 0x0001    /* IPv6 fragment header M flag */
#define BAE_IP6_OFFSET 0xFFF8

/* TCP flag bits of header byte 13; their index is the index of bae_conv_dir.tcp_flags[]. */
#define BAE_TCP_FIN 0x01
#define BAE_TCP_SYN 0x02
#define BAE_TCP_RST 0x04

struct cursor {
	void *pos;
	void *end;
};

struct vlan_tag {
	__be16 tci;
	__be16 proto; /* the ethertype that follows */
};

struct ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

/* pkt_meta.facts: what the profile stage found out about this very packet, for the policy
 * stage's triggers (new_conversations, tcp.retransmits, out_of_order, http.*). */
#define BAE_FACT_NEW_CONV 0x01     /* this packet inserted its conversation */
#define BAE_FACT_RETRANSMIT 0x02   /* counted as a retransmission */
#define BAE_FACT_OUT_OF_ORDER 0x04 /* counted as out-of-order */
/* ... and what l7.h read at the start of a TCP payload (the parse stage sets these). */
#define BAE_FACT_HTTP_REQUEST 0x08  /* an HTTP/1.x request line */
#define BAE_FACT_HTTP_RESPONSE 0x10 /* an HTTP/1.x status line */
#define BAE_FACT_HTTP_ERROR 0x20    /* ... with a 4xx or 5xx status */
#define BAE_FACT_HTTP_5XX 0x40      /* ... with a 5xx status */

/*
 * Everything the pipeline learned about one packet. Filled by packet_parse() and
 * profile_update(); the policy stage reads it. Fields beyond what the parse outcome reached
 * stay zero (e.g. ports of a BAE_PARSE_TRUNC_L4 frame).
 *
 * It lives in a per-CPU map value (bae_meta in bae.bpf.c), not on the stack. Verifier: it
 * tracks stack slots exactly, so on the stack every parser path left its own constants in
 * these fields, the stages after the parser branched on them, and no two paths' states were
 * ever equal: the later stages were verified once per parser path (over 1M instructions on
 * 6.18). The contents of a map value are unknown scalars to the verifier, so the paths meet.
 */
struct pkt_meta {
	__u64 now_ns;          /* clock_now() for IP frames, 0 otherwise */
	__u32 frame_len;       /* data_end - data */
	__u32 ingress_ifindex; /* ctx->ingress_ifindex */
	__u32 l4_payload_len;  /* TCP/UDP payload bytes as the IP length fields say (not frame_len) */
	__s32 ip_end;          /* offset where the IP packet ends per its length field */
	__u16 l3_off;          /* offset of the IP header from data */
	__u16 l4_off;          /* offset of the upper-layer header, 0 when none was reached */
	__u16 sport;           /* TCP/UDP ports, host order */
	__u16 dport;
	__u32 tcp_seq;         /* host order */
	__u32 tcp_ack;
	__u16 tcp_window;      /* unscaled */
	__u8 tcp_flags;        /* header byte 13: FIN 0x01 ... CWR 0x80 */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 parse;            /* enum bae_parse */
	__u8 family;           /* AF_INET / AF_INET6, 0 before an IP header parsed */
	__u8 l4_proto;         /* IP protocol number of the upper layer */
	__u8 ttl;              /* IPv4 TTL or IPv6 hop limit */
	__u8 vlan_depth;       /* VLAN tags seen, at most BAE_VLAN_MAX */
	__u8 fragment;         /* 1 for any IP fragment, first ones included */
	__u8 dir;              /* enum bae_dir of this packet within conv_key */
	__u8 addr_equal;       /* 1 when source and destination address are the same */
	__u8 facts;            /* BAE_FACT_* the profile stage learned about this packet */
	__u8 pad[2];
	__u8 saddr[16];        /* network order; IPv4 in the first 4 bytes */
	__u8 daddr[16];
	struct bae_conv_key conv_key; /* last: bae_xdp clears what comes before it */
};
_Static_assert(sizeof(struct pkt_meta) - __builtin_offsetof(struct pkt_meta, conv_key) < sizeof(struct bae_conv_key) + 8,
	       "pkt_meta.conv_key must stay the last field");

static __always_inline int vlan_proto_is(__be16 proto)
{
	return proto == bpf_htons(BAE_ETH_P_8021Q) || proto == bpf_htons(BAE_ETH_P_8021AD);
}

/* Ethernet and up to BAE_VLAN_MAX VLAN tags; returns the ethertype of the payload. */
static __always_inline int eth_parse(struct cursor *c, struct pkt_meta *m)
{
	struct ethhdr *eth = c->pos;
	__be16 proto;

	if ((void *)(eth + 1) > c->end)
		return -BAE_PARSE_TRUNC_ETH;
	proto = eth->h_proto;
	c->pos = eth + 1;

#pragma unroll
	for (int i = 0; i < BAE_VLAN_MAX; i++) {
		struct vlan_tag *tag = c->pos;

		if (!vlan_proto_is(proto))
			break;
		if ((void *)(tag + 1) > c->end)
			return -BAE_PARSE_TRUNC_VLAN;
		proto = tag->proto;
		c->pos = tag + 1;
		m->vlan_depth++;
	}
	if (vlan_proto_is(proto))
		return -BAE_PARSE_VLAN_DEPTH;
	return bpf_ntohs(proto);
}

/* IPv4 header with options; returns the IP protocol. A non-first fragment stops with
 * BAE_PARSE_FRAGMENT after the header parsed (the frame still has a conversation). */
static __always_inline int ipv4_parse(struct cursor *c, struct pkt_meta *m)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return -BAE_PARSE_TRUNC_L3;
	if ((*(__u8 *)ip >> 4) != 4)
		return -BAE_PARSE_BAD_VERSION;
	hlen = (*(__u8 *)ip & 0x0F) * 4;
	if (hlen < sizeof(*ip))
		return -BAE_PARSE_BAD_IHL;
	if (c->pos + hlen > c->end)
		return -BAE_PARSE_TRUNC_L3;

	m->family = AF_INET;
	m->ttl = ip->ttl;
	__builtin_memcpy(m->saddr, &ip->saddr, 4);
	__builtin_memcpy(m->daddr, &ip->daddr, 4);
	m->ip_end = m->l3_off + bpf_ntohs(ip->tot_len);
	c->pos += hlen;

	if (ip->frag_off & bpf_htons(BAE_IP_MF | BAE_IP_OFFSET))
		m->fragment = 1;
	if (ip->frag_off & bpf_htons(BAE_IP_OFFSET))
		return -BAE_PARSE_FRAGMENT;
	return ip->protocol;
}

static __always_inline int ipv6_ext_is(int next)
{
	return next == BAE_IPV6_HOPOPTS || next == BAE_IPV6_ROUTING || next == BAE_IPV6_FRAGMENT ||
	       next == BAE_IPV6_AH || next == BAE_IPV6_DSTOPTS;
}

/* Walks at most BAE_IPV6_EXT_MAX extension headers; returns the upper-layer protocol. */
static __always_inline int ipv6_ext_skip(struct cursor *c, struct pkt_meta *m, int next)
{
#pragma unroll
	for (int i = 0; i < BAE_IPV6_EXT_MAX; i++) {
		struct ipv6_ext *ext = c->pos;
		struct ipv6_frag *frag = c->pos;
		__u32 len;

		if (!ipv6_ext_is(next))
			return next;
		if (next == BAE_IPV6_FRAGMENT) {
			if ((void *)(frag + 1) > c->end)
				return -BAE_PARSE_TRUNC_EXT;
			next = frag->nexthdr;
			c->pos = frag + 1;
			m->fragment = 1;
			if (frag->frag_off & bpf_htons(BAE_IP6_OFFSET))
				return -BAE_PARSE_FRAGMENT;
			continue;
		}
		if ((void *)(ext + 1) > c->end)
			return -BAE_PARSE_TRUNC_EXT;
		/* AH counts its length in 4-byte units minus 2, the others in 8-byte units minus 1. */
		len = next == BAE_IPV6_AH ? (ext->hdrlen + 2) * 4 : (ext->hdrlen + 1) * 8;
		if (c->pos + len > c->end)
			return -BAE_PARSE_TRUNC_EXT;
		next = ext->nexthdr;
		c->pos += len;
	}
	if (ipv6_ext_is(next))
		return -BAE_PARSE_EXT_DEPTH;
	return next;
}

/* IPv6 header and its extension chain; returns the upper-layer protocol. */
static __always_inline int ipv6_parse(struct cursor *c, struct pkt_meta *m)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return -BAE_PARSE_TRUNC_L3;
	if ((*(__u8 *)ip6 >> 4) != 6)
		return -BAE_PARSE_BAD_VERSION;

	m->family = AF_INET6;
	m->ttl = ip6->hop_limit;
	__builtin_memcpy(m->saddr, &ip6->saddr, 16);
	__builtin_memcpy(m->daddr, &ip6->daddr, 16);
	m->ip_end = m->l3_off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	c->pos = ip6 + 1;
	return ipv6_ext_skip(c, m, ip6->nexthdr);
}

/* Payload bytes between the end of an L4 header at `hdr_end` and the IP length's end. */
static __always_inline __u32 l4_payload_len(struct pkt_meta *m, __s32 hdr_end)
{
	__s32 len = m->ip_end - hdr_end;

	return len > 0 ? len : 0;
}

/* The upper-layer header; returns the final parse outcome (never negative). */
static __always_inline int l4_parse(struct cursor *c, struct pkt_meta *m, int proto, void *data)
{
	m->l4_proto = proto;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = c->pos;
		__u32 doff;

		if ((void *)(th + 1) > c->end)
			return BAE_PARSE_TRUNC_L4;
		doff = (((__u8 *)th)[12] >> 4) * 4;
		if (doff < sizeof(*th))
			return BAE_PARSE_BAD_L4;
		if (c->pos + doff > c->end)
			return BAE_PARSE_TRUNC_L4;
		m->sport = bpf_ntohs(th->source);
		m->dport = bpf_ntohs(th->dest);
		m->tcp_seq = bpf_ntohl(th->seq);
		m->tcp_ack = bpf_ntohl(th->ack_seq);
		m->tcp_window = bpf_ntohs(th->window);
		m->tcp_flags = ((__u8 *)th)[13];
		m->l4_payload_len = l4_payload_len(m, m->l4_off + doff);
		c->pos += doff;
		return BAE_PARSE_TCP;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = c->pos;

		if ((void *)(uh + 1) > c->end)
			return BAE_PARSE_TRUNC_L4;
		m->sport = bpf_ntohs(uh->source);
		m->dport = bpf_ntohs(uh->dest);
		m->l4_payload_len = l4_payload_len(m, m->l4_off + sizeof(*uh));
		c->pos = uh + 1;
		return BAE_PARSE_UDP;
	}
	/* ICMP and ICMPv6 share the 4-byte type, code, checksum prefix; that is all we read. */
	if ((proto == IPPROTO_ICMP && m->family == AF_INET) ||
	    (proto == BAE_IPPROTO_ICMPV6 && m->family == AF_INET6)) {
		__u8 *icmp = c->pos;

		if ((void *)(icmp + 4) > c->end)
			return BAE_PARSE_TRUNC_L4;
		m->icmp_type = icmp[0];
		m->icmp_code = icmp[1];
		c->pos = icmp + 4;
		return proto == IPPROTO_ICMP ? BAE_PARSE_ICMP : BAE_PARSE_ICMPV6;
	}
	return BAE_PARSE_UNKNOWN_L4;
}

/*
 * A header offset the parser just stored in `m`, read back from there. Verifier: the cursor
 * leaves each path with its own constant offset (0, 1 or 2 VLAN tags; IPv4 or IPv6 with each
 * extension chain), and states whose packet pointers differ never prune, so each later header
 * would be checked once per earlier path. Read back from the map value, the offset is one
 * unknown number, and the paths meet. (The volatile read keeps the compiler from reusing the
 * value it stored.) The mask changes no real offset, which is inside the frame (an XDP frame
 * fits in a page); it keeps offset + header size below the verifier's MAX_PACKET_OFF (64 KiB),
 * or the bounds checks after it would prove nothing.
 */
#define BAE_PARSE_OFF_MASK 0x3FFF

static __always_inline __u32 parse_offset(const __u16 *stored)
{
	return *(const volatile __u16 *)stored & BAE_PARSE_OFF_MASK;
}

/* Parses the whole frame into `m`; returns its enum bae_parse outcome. */
static __always_inline int packet_parse(struct xdp_md *ctx, struct pkt_meta *m)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = { .pos = data, .end = (void *)(long)ctx->data_end };
	int next;

	m->frame_len = c.end - c.pos;
	next = eth_parse(&c, m);
	if (next < 0)
		return -next;
	m->l3_off = c.pos - data;
	c.pos = data + parse_offset(&m->l3_off);
	if (next == BAE_ETH_P_IP)
		next = ipv4_parse(&c, m);
	else if (next == BAE_ETH_P_IPV6)
		next = ipv6_parse(&c, m);
	else
		return BAE_PARSE_NON_IP;
	if (next < 0)
		return -next;
	m->l4_off = c.pos - data;
	c.pos = data + parse_offset(&m->l4_off);
	return l4_parse(&c, m, next, data);
}

#endif /* BAE_PARSING_H */
