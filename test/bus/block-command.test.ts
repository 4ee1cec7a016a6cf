// test-unit: needs no root and no kernel (make test-unit).
// SecBeat's BlockCommand as bae reads it: every field checked, every reason a command is refused
// named (a prefix with host bits is refused saying why); and the bounded record of
// command ids that makes commands idempotent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeenIds, newBlockCommand, parseBlockCommand } from '../../src/bus';

const good = {
  command_id: '3f2a9c1e-2b4d-4c8e-9a51-0d7e6f1b2c3d',
  ip: '192.0.2.7',
  reason: 'error flood: 50 errors in 60s',
  duration_seconds: 300,
  action: 'block',
  issued_at: '2026-12-06T22:00:00Z',
  source: 'orchestrator-1',
};

describe('a BlockCommand', () => {
  it('as SecBeat sends it is accepted, with its TTL in ns and its address canonical', () => {
    const c = parseBlockCommand(good);
    assert.ok(!('errors' in c), 'errors' in c ? c.errors.join('; ') : '');
    assert.equal(c.ttlNs, 300_000_000_000n);
    assert.equal(c.target.address, '192.0.2.7');
    assert.equal(c.target.version, 4);
    assert.equal(c.command.action, 'block');
    const v6 = parseBlockCommand({ ...good, ip: '2001:DB8:0:0::7', action: 'Block' });
    assert.ok(!('errors' in v6));
    assert.equal(v6.target.address, '2001:db8::7');
    assert.equal(v6.command.action, 'block', 'the variant name in either case');
    const host = parseBlockCommand({ ...good, ip: '192.0.2.7/32' });
    assert.ok(!('errors' in host), 'a /32 is the single address');
  });

  it('unblock needs no duration', () => {
    const c = parseBlockCommand({ command_id: 'u1', ip: '192.0.2.7', action: 'unblock' });
    assert.ok(!('errors' in c), 'errors' in c ? c.errors.join('; ') : '');
    assert.equal(c.ttlNs, 0n);
  });

  it('malformed is refused with every reason named', () => {
    const cases: [unknown, RegExp[]][] = [
      [null, [/JSON object/]],
      [[good], [/JSON object/]],
      [{ ...good, command_id: undefined }, [/command_id is missing/]],
      [{ ...good, command_id: '' }, [/command_id is empty/]],
      [{ ...good, command_id: 'x'.repeat(129) }, [/command_id is longer than 128/]],
      [{ ...good, ip: 'not-an-ip' }, [/ip: 'not-an-ip' is not an IPv4 or IPv6 address/]],
      [{ ...good, ip: '10.0.0.1/8' }, [/ip: '10\.0\.0\.1\/8' has host bits set below \/8 \(did you mean 10\.0\.0\.0\/8\?\)/]],
      [{ ...good, ip: 7 }, [/ip must be a string/]],
      [{ ...good, action: 'ban' }, [/action must be 'block' or 'unblock', got "ban"/]],
      [{ ...good, duration_seconds: 0 }, [/duration_seconds must be a whole number from 1/]],
      [{ ...good, duration_seconds: 1.5 }, [/duration_seconds/]],
      [{ ...good, duration_seconds: '300' }, [/duration_seconds/]],
      [{ ...good, duration_seconds: 1e12 }, [/duration_seconds/]],
      [{ ...good, issued_at: 'yesterday' }, [/issued_at 'yesterday' is not an RFC 3339 time/]],
      [{ ip: '300.1.1.1', action: 'nuke' }, [/command_id is missing/, /is not an IPv4/, /action must be/]],
      [{ ...good, escalate: 2 }, [/escalate is an object \{ factor, max_seconds, forget_seconds \}/]],
      [{ ...good, escalate: { factor: 1, max_seconds: 3600, forget_seconds: 60 } }, [/escalate\.factor must be a whole number from 2 to 16, got 1/]],
      [{ ...good, escalate: { factor: 2, forget_seconds: 60 } }, [/escalate\.max_seconds must be a whole number from 1/]],
      [{ ...good, escalate: { factor: 2, max_seconds: 60, forget_seconds: 60 } }, [/escalate\.max_seconds 60 is shorter than duration_seconds 300/]],
    ];
    for (const [value, reasons] of cases) {
      const c = parseBlockCommand(value);
      assert.ok('errors' in c, `refused: ${JSON.stringify(value)}`);
      for (const r of reasons) assert.ok(c.errors.some((e) => r.test(e)), `${r} in ${JSON.stringify(c.errors)}`);
      assert.equal(c.errors.length, reasons.length, `exactly the reasons expected: ${JSON.stringify(c.errors)}`);
    }
  });

  it('may ask to escalate a repeat offender (bae\'s extension), in whole seconds', () => {
    const c = parseBlockCommand({ ...good, escalate: { factor: 2, max_seconds: 86_400, forget_seconds: 3600 } });
    assert.ok(!('errors' in c), 'errors' in c ? c.errors.join('; ') : '');
    assert.deepEqual(c.escalate, { factor: 2, maxNs: 86_400n * 1_000_000_000n, forgetNs: 3600n * 1_000_000_000n });
    assert.deepEqual(c.command.escalate, { factor: 2, max_seconds: 86_400, forget_seconds: 3600 });
    const plain = parseBlockCommand(good);
    assert.ok(!('errors' in plain) && plain.escalate === undefined && !('escalate' in plain.command), 'SecBeat\'s fields alone: no escalation');
    const made = newBlockCommand({ ip: '192.0.2.1', action: 'block', durationSeconds: 60, source: 's', escalate: { factor: 3, maxNs: 600_000_000_000n, forgetNs: 60_000_000_000n } });
    assert.deepEqual(made.escalate, { factor: 3, max_seconds: 600, forget_seconds: 60 });
    const back = parseBlockCommand(made);
    assert.ok(!('errors' in back) && back.escalate?.factor === 3);
  });

  it('made by bae has a fresh id and passes its own check', () => {
    const a = newBlockCommand({ ip: '192.0.2.1', action: 'block', durationSeconds: 60, source: 'bae-cli@h', now: new Date(0) });
    const b = newBlockCommand({ ip: '192.0.2.1', action: 'block', durationSeconds: 60, source: 'bae-cli@h', now: new Date(0) });
    assert.notEqual(a.command_id, b.command_id);
    assert.equal(a.issued_at, '1970-01-01T00:00:00.000Z');
    assert.ok(!('errors' in parseBlockCommand(a)));
  });
});

describe('the record of command ids', () => {
  it('says a repeated id is not new, and forgets the oldest beyond its capacity', () => {
    const seen = new SeenIds(3);
    assert.equal(seen.add('a'), true);
    assert.equal(seen.add('a'), false);
    seen.add('b');
    seen.add('c');
    seen.add('d'); // 'a' goes
    assert.equal(seen.size, 3);
    assert.equal(seen.has('a'), false);
    assert.equal(seen.add('b'), false);
    assert.throws(() => new SeenIds(0), RangeError);
  });
});
