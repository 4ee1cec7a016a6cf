// Layer-7 facts (bpf/l7.h): HTTP/1.x request and status lines at the start of a TCP payload on
// an HTTP port are counted in the direction they travel; everything else that looks close to
// them is not. Golden frames through BPF_PROG_TEST_RUN, counts read back from the profile.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeHttpPorts, MAPS } from '../../src/datapath';
import { TCP_ACK, TCP_PSH, buildPacket } from '../lib/packets';
import { Bae } from './harness';

interface Http {
  requests: bigint;
  responses: bigint;
  errors: bigint;
  x5xx: bigint;
}

describe('layer 7: HTTP/1.x lines', () => {
  let bae: Bae;
  let host = 0;
  before(() => {
    bae = new Bae();
  });
  after(() => bae?.close());

  /** A fresh client/server pair per case, so that each case reads its own conversation. */
  function pair(v6 = false): [string, string] {
    host++;
    return v6 ? [`2001:db8:7::${host.toString(16)}`, '2001:db8:7::ffff'] : [`10.77.${host >> 8}.${host & 255}`, '10.77.255.254'];
  }

  function send(src: string, dst: string, sport: number, dport: number, payload: string | Buffer, extra: { fragment?: boolean } = {}): void {
    const ip = src.includes(':') ? ({ version: 6, src, dst } as const) : ({ version: 4, src, dst, ...(extra.fragment ? { moreFragments: true } : {}) } as const);
    const frame = buildPacket({
      ip,
      l4: { proto: 'tcp', sport, dport, flags: TCP_PSH | TCP_ACK, seq: 1, payload: typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload },
    }).frame;
    bae.run(frame);
  }

  /** HTTP counts of the direction src -> dst. */
  function http(src: string, dst: string): Http {
    const { conv, dir } = bae.conv(src, dst);
    assert.ok(conv, `conversation ${src} <-> ${dst} exists`);
    const d = conv.dir[dir];
    return { requests: d.httpRequests, responses: d.httpResponses, errors: d.httpErrors, x5xx: d.http5xx };
  }

  const none: Http = { requests: 0n, responses: 0n, errors: 0n, x5xx: 0n };

  test('the default HTTP ports are 80 and 8080', () => {
    const words = bae.collection.map(MAPS.httpPorts).arrayValues();
    const list = decodeHttpPorts(Array.from({ length: words.length / 8 }, (_, i) => words.subarray(i * 8, i * 8 + 8)));
    assert.deepEqual(list, [80, 8080]);
  });

  test('every request method counts once, in the client -> server direction', () => {
    const [c, s] = pair();
    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
    for (const m of methods) send(c, s, 40000, 80, `${m} /index.html HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.deepEqual(http(c, s), { ...none, requests: BigInt(methods.length) });
    assert.deepEqual(http(s, c), none);
  });

  test('status lines count as responses; 4xx and 5xx as errors; 5xx also as 5xx', () => {
    const [c, s] = pair();
    const codes = [200, 204, 301, 399, 400, 404, 499, 500, 503, 599];
    for (const code of codes) send(s, c, 8080, 40001, `HTTP/1.1 ${code} Whatever\r\nContent-Length: 0\r\n\r\n`);
    send(s, c, 8080, 40001, 'HTTP/1.0 404 Not Found\r\n\r\n');
    assert.deepEqual(http(s, c), { requests: 0n, responses: 11n, errors: 7n, x5xx: 3n });
    assert.deepEqual(http(c, s), none);
  });

  test('IPv6 is read the same way', () => {
    const [c, s] = pair(true);
    send(c, s, 40002, 80, 'GET / HTTP/1.1\r\n\r\n');
    send(s, c, 80, 40002, 'HTTP/1.1 502 Bad Gateway\r\n\r\n');
    assert.deepEqual(http(c, s), { ...none, requests: 1n });
    assert.deepEqual(http(s, c), { requests: 0n, responses: 1n, errors: 1n, x5xx: 1n });
  });

  test('what is not an HTTP/1.x line at the start of a payload on an HTTP port is not counted', () => {
    const [c, s] = pair();
    const notHttp = [
      'get / HTTP/1.1\r\n\r\n', // methods are case-sensitive
      'GETX / HTTP/1.1\r\n\r\n',
      'POSTED / HTTP/1.1\r\n',
      'HTTP/2 200 OK\r\n\r\n\r\n', // HTTP/2 has no status line
      'HTTP/1.1 20 OK\r\n\r\n\r\n',
      'HTTP/1.1 2x0 OK\r\n\r\n',
      'xHTTP/1.1 404 Not Found\r\n',
      'GET /', // shorter than 12 bytes: never read
      'HTTP/1.1 40', // 11 bytes
    ];
    for (const p of notHttp) send(c, s, 40003, 80, p);
    for (const p of notHttp) send(s, c, 80, 40003, p);
    send(c, s, 40003, 80, Buffer.alloc(0));
    assert.deepEqual(http(c, s), none);
    assert.deepEqual(http(s, c), none);
  });

  test('other ports and IP fragments are not read', () => {
    const [c, s] = pair();
    send(c, s, 40004, 8081, 'GET / HTTP/1.1\r\n\r\n');
    send(s, c, 443, 40004, 'HTTP/1.1 500 Oops\r\n\r\n');
    send(c, s, 40004, 80, 'GET / HTTP/1.1\r\n\r\n', { fragment: true });
    assert.deepEqual(http(c, s), none);
    assert.deepEqual(http(s, c), none);
  });

  test('with --http-ports none nothing is read', () => {
    const other = new Bae({ httpPorts: [] });
    try {
      const c = '10.78.0.1';
      const s = '10.78.0.2';
      other.run(buildPacket({ ip: { version: 4, src: c, dst: s }, l4: { proto: 'tcp', sport: 40005, dport: 80, flags: TCP_PSH | TCP_ACK, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') } }).frame);
      const { conv, dir } = other.conv(c, s);
      assert.ok(conv);
      assert.equal(conv.dir[dir].packets, 1n);
      assert.equal(conv.dir[dir].httpRequests, 0n);
    } finally {
      other.close();
    }
  });
});
