/* SPDX-License-Identifier: GPL-2.0 */
/*
 * l7.h: layer-7 facts of the bae XDP program: HTTP/1.x request and status lines at the start
 * of a TCP segment's payload, on the ports of map bae_http_ports. Kernel only; the rules and
 * what is not seen (TLS, HTTP/2, a line split across segments, pipelined requests after the
 * first in a segment) are in docs/profiles.md "Layer 7".
 *
 * A segment is read only when its payload starts with at least HTTP_PEEK bytes and one of its
 * ports is in the set: one bitmap word read for every other TCP segment, a 12-byte copy for
 * those. The facts go to pkt_meta.facts; the profile stage counts them per direction and the
 * policy stage's http.* metrics read them.
 */
#ifndef BAE_L7_H
#define BAE_L7_H

#include "bae.h"
#include "parsing.h"

/* "HTTP/1.1 404" and "OPTIONS /x H" are 12 bytes: enough for a status code or any method. */
#define HTTP_PEEK 12

/* Map bae_http_ports (ARRAY, BAE_HTTP_PORT_WORDS words): bit (port & 63) of word port >> 6. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BAE_HTTP_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} bae_http_ports SEC(".maps");

static __always_inline int http_port(__u16 port)
{
	__u32 word = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&bae_http_ports, &word);

	return bits && ((*bits >> (port & 63)) & 1);
}

/* The four bytes at p as one little-endian word: a whole-word compare per method. */
#define HTTP_WORD(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

static __always_inline __u32 http_word(const __u8 *p)
{
	return HTTP_WORD(p[0], p[1], p[2], p[3]);
}

static __always_inline int http_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* An RFC 9110 method in upper case followed by a space: the start of a request line. */
static __always_inline int http_request_line(const __u8 *p)
{
	__u32 w = http_word(p);

	if (w == HTTP_WORD('G', 'E', 'T', ' ') || w == HTTP_WORD('P', 'U', 'T', ' '))
		return 1;
	if (p[4] == ' ' && (w == HTTP_WORD('P', 'O', 'S', 'T') || w == HTTP_WORD('H', 'E', 'A', 'D')))
		return 1;
	if (p[5] == ' ' && w == HTTP_WORD('P', 'A', 'T', 'C') && p[4] == 'H')
		return 1;
	if (p[5] == ' ' && w == HTTP_WORD('T', 'R', 'A', 'C') && p[4] == 'E')
		return 1;
	if (p[6] == ' ' && w == HTTP_WORD('D', 'E', 'L', 'E') && p[4] == 'T' && p[5] == 'E')
		return 1;
	if (p[7] == ' ' && w == HTTP_WORD('O', 'P', 'T', 'I') && p[4] == 'O' && p[5] == 'N' && p[6] == 'S')
		return 1;
	if (p[7] == ' ' && w == HTTP_WORD('C', 'O', 'N', 'N') && p[4] == 'E' && p[5] == 'C' && p[6] == 'T')
		return 1;
	return 0;
}

/* "HTTP/1.x NNN": the status code, or 0 when this is no HTTP/1 status line. */
static __always_inline __u32 http_status_line(const __u8 *p)
{
	if (http_word(p) != HTTP_WORD('H', 'T', 'T', 'P') || p[4] != '/' || p[5] != '1' ||
	    p[6] != '.' || p[8] != ' ' || !http_digit(p[9]) || !http_digit(p[10]) || !http_digit(p[11]))
		return 0;
	return (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
}

/*
 * Sets the HTTP facts of a TCP segment whose headers parsed into m. Bytes through
 * bpf_xdp_load_bytes: the payload offset is a computed number, and the helper checks it.
 */
static __always_inline void l7_http(struct xdp_md *ctx, struct pkt_meta *m)
{
	__u8 p[HTTP_PEEK];
	__u32 status, off;

	if (m->parse != BAE_PARSE_TCP || m->l4_payload_len < HTTP_PEEK || m->fragment)
		return;
	if (!http_port(m->sport) && !http_port(m->dport))
		return;
	off = m->ip_end - m->l4_payload_len; /* where the payload starts */
	if (bpf_xdp_load_bytes(ctx, off, p, HTTP_PEEK))
		return;
	status = http_status_line(p);
	if (status) {
		m->facts |= BAE_FACT_HTTP_RESPONSE;
		if (status >= 400 && status <= 599)
			m->facts |= BAE_FACT_HTTP_ERROR;
		if (status >= 500 && status <= 599)
			m->facts |= BAE_FACT_HTTP_5XX;
	} else if (http_request_line(p)) {
		m->facts |= BAE_FACT_HTTP_REQUEST;
	}
}

#endif /* BAE_L7_H */
