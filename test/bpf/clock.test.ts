// test-unit: needs no root and no kernel (make test-unit).
// One clock read per packet: bpf_ktime_get_ns() costs about as much as the rest of the profile
// stage on these machines (22-27 ns), so bae.o reads it in one place, the profile stage, which
// runs once per packet, and every later stage reads meta.now_ns.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { BAE_OBJECT } from './harness';

// BPF_FUNC_ktime_get_ns in the kernel's helper list (include/uapi/linux/bpf.h).
const BPF_FUNC_KTIME_GET_NS = 5;

test('bae.o calls bpf_ktime_get_ns at exactly one place, the profile stage', () => {
  const listing = execFileSync('llvm-objdump', ['-d', '--no-show-raw-insn', BAE_OBJECT], { encoding: 'utf8' });
  const calls = listing.split('\n').filter((l) => new RegExp(`\\bcall ${BPF_FUNC_KTIME_GET_NS}$`).test(l.trim()));
  assert.equal(calls.length, 1, `calls of bpf_ktime_get_ns in bae.o:\n${calls.join('\n')}`);
});
