// HTTP triggers in the kernel (BPF_PROG_TEST_RUN, test clock) with policies/secbeat.yaml as
// shipped: 50 or more HTTP errors sent to a client within 60 s, or 1000 or more requests from it,
// block that client for 300 s. The response metrics belong to the client (the response's
// destination): its window, its block and the event name it, never the server.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatAddress, RingBuffer } from '../../src/datapath';
import { XDP } from '../../src/datapath/layout';
import { decodePolicyEvent, type PolicyEventRecord } from '../../src/datapath/policy-layout';
import { readBlocklist, readCounters } from '../../src/policy/state';
import { TCP_ACK, TCP_PSH } from '../lib/packets';
import { repoRoot } from '../lib/fixtures';
import { PolicyBae, frame, policies } from './helpers';

const SERVER = '10.60.0.1';
const S = 1_000_000_000n;
const EVENT_BLOCK = 2;

const secbeat = policies(fs.readFileSync(path.join(repoRoot, 'policies/secbeat.yaml'), 'utf8'), 'policies/secbeat.yaml');
const errorsPolicy = secbeat.find((p) => p.name === 'secbeat-http-errors')!;
const requestsPolicy = secbeat.find((p) => p.name === 'secbeat-http-requests')!;

// Each segment of a flow starts where the last one ended: a repeated sequence number is a
// retransmission, which HTTP metrics do not count again.
const nextSeq = new Map<string, number>();
function seqFor(flow: string, len: number): number {
  const seq = nextSeq.get(flow) ?? 1000;
  nextSeq.set(flow, (seq + len) >>> 0);
  return seq;
}

function request(client: string, sport = 40000): Buffer {
  const payload = Buffer.from('GET /missing HTTP/1.1\r\nHost: x\r\n\r\n');
  return frame({ ip: { version: 4, src: client, dst: SERVER }, l4: { proto: 'tcp', sport, dport: 80, flags: TCP_PSH | TCP_ACK, seq: seqFor(`${client}:${sport}>`, payload.length), payload } });
}

function response(client: string, status: number, dport = 40000): Buffer {
  const payload = Buffer.from(`HTTP/1.1 ${status} Whatever\r\nContent-Length: 0\r\n\r\n`);
  return frame({ ip: { version: 4, src: SERVER, dst: client }, l4: { proto: 'tcp', sport: 80, dport, flags: TCP_PSH | TCP_ACK, seq: seqFor(`<${client}:${dport}`, payload.length), payload } });
}

describe('HTTP triggers (policies/secbeat.yaml)', () => {
  let bae: PolicyBae;
  let ring: RingBuffer;
  const events: PolicyEventRecord[] = [];
  before(async () => {
    bae = new PolicyBae();
    ring = new RingBuffer(bae.collection.map('policy_events'), (r) => events.push(decodePolicyEvent(r)));
    await bae.apply(secbeat);
  });
  after(() => {
    ring?.close();
    bae?.close();
  });

  const blockedAddrs = () => readBlocklist(bae.maps).map((b) => ({ addr: formatAddress(b.family === 2 ? 4 : 6, b.addr), expiryNs: b.expiryNs }));

  it('blocks the client that the 50th error within 60 s goes to, for 300 s, and not the server', () => {
    const client = '10.60.1.1';
    let t = 100n * S;
    const verdicts: number[] = [];
    for (let i = 0; i < 50; i++) {
      t += 100_000_000n; // 10 errors a second: 50 within 5 s
      bae.setClock(t);
      bae.run(request(client));
      verdicts.push(bae.run(response(client, i % 2 ? 404 : 503)));
    }
    assert.deepEqual(verdicts.slice(0, 49), new Array(49).fill(XDP.pass), 'errors 1-49 pass');
    assert.equal(verdicts[49], XDP.pass, 'the 50th error fires the block and still reaches the client: it is the server\'s packet, not the blocked address\'s');
    assert.deepEqual(blockedAddrs(), [{ addr: client, expiryNs: t + 300n * S }]);
    assert.equal(bae.run(request(client)), XDP.drop, 'the client is blocked');
    assert.equal(bae.run(request('10.60.1.2')), XDP.pass, 'another client is not');
    assert.equal(bae.run(response('10.60.1.2', 200)), XDP.pass, 'the server is not blocked');
    ring.consume();
    const blocks = events.filter((e) => e.kind === EVENT_BLOCK && e.policyId === errorsPolicy.id);
    assert.equal(blocks.length, 1);
    assert.equal(formatAddress(4, blocks[0]!.addrA), client, 'the block event names the client first');
    assert.equal(formatAddress(4, blocks[0]!.addrB), SERVER);

    // More errors to the blocked client: not blocked again (one block, the same expiry).
    const expiry = t + 300n * S;
    for (let i = 0; i < 60; i++) {
      t += 10_000_000n;
      bae.setClock(t);
      bae.run(response(client, 404));
    }
    assert.equal(readCounters(bae.maps).get(errorsPolicy.id)!.blocks, 1n);
    assert.deepEqual(blockedAddrs(), [{ addr: client, expiryNs: expiry }]);

    // 300 s after the block: the ban is over and the window starts again.
    bae.setClock(expiry + S);
    assert.equal(bae.run(request(client)), XDP.pass, 'the ban ends after its ttl');
    assert.equal(bae.run(response(client, 404)), XDP.pass, 'one error in a fresh window passes');
  });

  it('49 errors within 60 s and more spread out do not block; 2xx and 3xx never count', () => {
    const client = '10.60.2.1';
    let t = 1000n * S;
    for (let i = 0; i < 49; i++) {
      t += S;
      bae.setClock(t);
      assert.equal(bae.run(response(client, 404)), XDP.pass);
    }
    t += 61n * S; // the window has moved past all of them
    for (let i = 0; i < 40; i++) {
      t += S;
      bae.setClock(t);
      assert.equal(bae.run(response(client, 500)), XDP.pass);
      assert.equal(bae.run(response(client, 200)), XDP.pass);
      assert.equal(bae.run(response(client, 302)), XDP.pass);
    }
    assert.equal(bae.run(request(client)), XDP.pass, 'never blocked');
    assert.ok(!blockedAddrs().some((b) => b.addr === client));
  });

  it('blocks a client at its 1000th request within 60 s', () => {
    const client = '10.60.3.1';
    let t = 2000n * S;
    let firstDrop = -1;
    for (let i = 0; i < 1001 && firstDrop < 0; i++) {
      t += 10_000_000n; // 100 requests a second: 1000 within 10 s
      bae.setClock(t);
      if (bae.run(request(client, 40000 + (i % 100))) === XDP.drop) firstDrop = i + 1;
    }
    assert.equal(firstDrop, 1000, 'the 1000th request fires the block and is dropped');
    assert.equal(bae.run(request(client)), XDP.drop);
    assert.ok(blockedAddrs().some((b) => b.addr === client));
    assert.equal(readCounters(bae.maps).get(requestsPolicy.id)!.blocks, 1n);
  });

  it('a retransmitted error response does not count again', () => {
    const client = '10.60.4.1';
    let t = 3000n * S;
    for (let i = 0; i < 49; i++) {
      t += 100_000_000n;
      bae.setClock(t);
      assert.equal(bae.run(response(client, 404)), XDP.pass);
    }
    // The 49th error sent again five times (same sequence number): still 49 errors.
    const again = frame({ ip: { version: 4, src: SERVER, dst: client }, l4: { proto: 'tcp', sport: 80, dport: 40000, flags: TCP_PSH | TCP_ACK, seq: nextSeq.get(`<${client}:40000`)! - 44, payload: Buffer.from('HTTP/1.1 404 Whatever\r\nContent-Length: 0\r\n\r\n') } });
    for (let i = 0; i < 5; i++) {
      t += 100_000_000n;
      bae.setClock(t);
      assert.equal(bae.run(again), XDP.pass);
    }
    assert.ok(!blockedAddrs().some((b) => b.addr === client), 'retransmissions did not bring the block');
    t += 100_000_000n;
    bae.setClock(t);
    bae.run(response(client, 404));
    assert.ok(blockedAddrs().some((b) => b.addr === client), 'the 50th distinct error blocks');
  });
});
