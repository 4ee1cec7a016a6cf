// Credentials and TLS on the NATS bus, against real nats-servers spawned by this file: user and
// password, token and nkey accepted when right and refused with a BAE_BUS error naming the server
// and 'authorization violation' when wrong; a server whose credentials change under a connected
// client is retried with a growing wait (attempts counted in the server's log), and the client is
// back once they are right again; TLS with a CA and a server certificate made here by openssl,
// and mutual TLS with a client certificate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nkeys } from 'nats';
import { BusError, NatsBus, SUBJECTS, authOptions, reconnectWait, type NatsAuth } from '../../src/bus';
import { natsServerAvailable, startNatsServer, type NatsServer } from '../lib/nats-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function refused(url: string, auth: NatsAuth, pattern: RegExp): Promise<void> {
  await assert.rejects(NatsBus.open({ url, auth, connectTimeoutMs: 2000 }), (err: unknown) => {
    assert.ok(err instanceof BusError, String(err));
    assert.equal(err.code, 'BAE_BUS');
    assert.ok(err.message.includes(url), `names the server: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

/** A bus opened, a message through it, closed: the credentials work. */
async function roundTrip(url: string, auth: NatsAuth): Promise<void> {
  const bus = await NatsBus.open({ url, auth, connectTimeoutMs: 3000 });
  try {
    const got: unknown[] = [];
    bus.subscribe('bae.test.auth', (m) => void got.push(m.json()));
    await bus.flush();
    bus.publish('bae.test.auth', { ok: 1 });
    await bus.flush();
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    assert.deepEqual(got, [{ ok: 1 }]);
  } finally {
    await bus.close();
  }
}

describe('NATS credentials and TLS', { skip: !natsServerAvailable() && process.env.CI !== 'true' && 'nats-server is not installed (under CI=true the tests run and fail)' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-natsauth-'));
  const servers: NatsServer[] = [];
  const start = async (args: string[]) => {
    const s = await startNatsServer({ args });
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a user and password: right ones connect, a wrong one is refused naming the server and the reason', async () => {
    const s = await start(['--user', 'edge', '--pass', 'right-pass']);
    await roundTrip(s.url, { user: 'edge', pass: 'right-pass' });
    await refused(s.url, { user: 'edge', pass: 'wrong-pass' }, /authorization violation/);
    await refused(s.url, {}, /authorization violation/);
  });

  it('a token: the right one connects, a wrong one is refused', async () => {
    const s = await start(['--auth', 's3cret-token']);
    await roundTrip(s.url, { token: 's3cret-token' });
    await refused(s.url, { token: 'nope' }, /authorization violation/);
  });

  it('an nkey seed file: the server knows the public key and the client signs its nonce', async () => {
    const user = nkeys.createUser();
    const other = nkeys.createUser();
    const seedFile = path.join(dir, 'edge.nk');
    const otherFile = path.join(dir, 'other.nk');
    fs.writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + '\n', { mode: 0o600 });
    fs.writeFileSync(otherFile, new TextDecoder().decode(other.getSeed()) + '\n', { mode: 0o600 });
    const conf = path.join(dir, 'nkey.conf');
    fs.writeFileSync(conf, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
    const s = await start(['-c', conf]);
    await roundTrip(s.url, { nkeyFile: seedFile });
    await refused(s.url, { nkeyFile: otherFile }, /authorization violation/);
  });

  it('files that cannot be used are usage errors naming the file, before any connection', () => {
    const missing = path.join(dir, 'missing.pem');
    assert.throws(() => authOptions({ tlsCa: missing }), (e: Error & { code?: string }) => e.code === 'BAE_USAGE' && e.message.includes(missing) && /ENOENT/.test(e.message));
    const notSeed = path.join(dir, 'not-a-seed');
    fs.writeFileSync(notSeed, 'hello\n');
    assert.throws(() => authOptions({ nkeyFile: notSeed }), /does not hold a user seed/);
    assert.throws(() => authOptions({ credsFile: notSeed }), /has no NATS user JWT/);
    assert.throws(() => authOptions({ tlsCert: notSeed }), /go together/);
    assert.throws(() => authOptions({ pass: 'x' }), /--nats-pass needs --nats-user/);
  });

  it('credentials changed under a connected client: reconnects back off (counted in the server log), and it is back once they match', async () => {
    const s = await start(['--user', 'edge', '--pass', 'one']);
    const bus = await NatsBus.open({ url: s.url, auth: { user: 'edge', pass: 'one' } });
    try {
      await s.kill();
      await s.start(['--user', 'edge', '--pass', 'two']);
      const from = s.log().length;
      const t0 = Date.now();
      const windowMs = 7000;
      await sleep(windowMs);
      const refusals = (s.log().slice(from).match(/authentication error/g) ?? []).length;
      // Attempts at about 0.5, 1, 2, 4 s after the loss (reconnectWait), and not one more per
      // 0.5 s: a fixed 500 ms retry would make 14 in this window.
      const expected = [500, 1000, 2000, 4000, 8000].filter((t) => t <= windowMs).length;
      assert.ok(refusals >= 2 && refusals <= expected + 1, `${refusals} refused attempts in ${Date.now() - t0} ms (back-off expects about ${expected})`);
      assert.equal(bus.state().connected, false);
      assert.ok(bus.state().reconnectAttempts >= refusals - 1, JSON.stringify(bus.state()));
      // Right again: the client finds it within the back-off (at most half the outage).
      await s.kill();
      await s.start(['--user', 'edge', '--pass', 'one']);
      const deadline = Date.now() + 10_000;
      while (!bus.state().connected && Date.now() < deadline) await sleep(100);
      assert.equal(bus.state().connected, true, 'reconnected with the right credentials');
      bus.publish(SUBJECTS.telemetry('n'), {});
      await bus.flush();
    } finally {
      await bus.close();
    }
  });

  it('the reconnect wait doubles from 0.5 s up to 30 s', () => {
    assert.deepEqual([0, 999, 2000, 8000, 59_000, 600_000].map(reconnectWait), [500, 500, 1000, 4000, 29_500, 30_000]);
  });

  describe('TLS', () => {
    let ca: string;
    let serverCert: string;
    let serverKey: string;
    let clientCert: string;
    let clientKey: string;
    let otherCa: string;
    before(() => {
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      const makeCa = (name: string) => {
        ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`);
        return path.join(dir, `${name}.pem`);
      };
      const sign = (name: string, caName: string, ext: string) => {
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
        fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
        ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
        return [path.join(dir, `${name}.pem`), path.join(dir, `${name}.key`)] as const;
      };
      ca = makeCa('test-ca');
      otherCa = makeCa('other-ca');
      [serverCert, serverKey] = sign('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
      [clientCert, clientKey] = sign('client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
    });

    it('a server certificate signed by the CA given is trusted; by another CA, refused as a TLS failure', async () => {
      const s = await start(['--tls', '--tlscert', serverCert, '--tlskey', serverKey]);
      await roundTrip(s.url, { tlsCa: ca });
      await refused(s.url, { tlsCa: otherCa }, /TLS failed|certificate/i);
    });

    it('mutual TLS: a client certificate of the CA connects, none is refused', async () => {
      const s = await start(['--tlsverify', '--tlscert', serverCert, '--tlskey', serverKey, '--tlscacert', ca]);
      await roundTrip(s.url, { tlsCa: ca, tlsCert: clientCert, tlsKey: clientKey });
      await assert.rejects(NatsBus.open({ url: s.url, auth: { tlsCa: ca }, connectTimeoutMs: 2000 }), (err: unknown) => {
        assert.ok(err instanceof BusError && err.message.includes(s.url), String(err));
        return true;
      });
    });
  });
});
