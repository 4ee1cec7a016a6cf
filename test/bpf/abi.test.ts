// The kernel ABI in TypeScript is generated from BTF (scripts/gen-abi.mjs -> src/datapath/abi.gen.ts),
// never restated by hand: the committed file is what bae.o says, and a field added to a struct of
// bpf/bae.h reaches the generated description with no TypeScript edit.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ENUMS, STRUCTS } from '../../src/datapath/abi.gen';
import type { AbiEnum, AbiStruct } from '../../src/datapath/abi-types';
import { repoRoot } from '../lib/fixtures';

const GEN = path.join(repoRoot, 'scripts/gen-abi.mjs');
const BAE_O = path.join(repoRoot, 'build/bpf/bae.o');

/** Compiles `source` (a BPF C file) in `dir` the way the Makefile compiles bpf/; headers in `dir` come before bpf/'s. */
function compileBpf(dir: string, source: string): string {
  const arch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
  const out = path.join(dir, 'fixture.o');
  execFileSync('clang', ['-O2', '-g', '-Wall', '-Werror', '-target', 'bpf', '-mcpu=v3', '-I', dir, '-I', path.join(repoRoot, 'bpf'), '-I', path.join(repoRoot, 'build'), '-I', `/usr/include/${arch}`, '-c', source, '-o', out]);
  return out;
}

/** What scripts/gen-abi.mjs generates for `objects`, loaded as a module. */
interface Generated {
  STRUCTS: Record<string, AbiStruct>;
  ENUMS: Record<string, AbiEnum>;
}

function generate(dir: string, objects: string[]): Generated {
  const ts = execFileSync('node', [GEN, ...objects], { encoding: 'utf8', cwd: repoRoot });
  // The generated file is TypeScript only in its `as const satisfies` tails and one type import.
  const js = ts
    .replace(/^import type .*$/m, '')
    .replace(/ as const satisfies Record<string, Abi\w+>;/g, ';')
    .replace(/^export const /gm, 'exports.');
  const file = path.join(dir, `abi-${process.hrtime.bigint()}.js`);
  fs.writeFileSync(file, js);
  return require(file) as Generated;
}

describe('the generated kernel ABI', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-abi-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('src/datapath/abi.gen.ts is what the BTF of bae.o says', () => {
    // The build runs the same check; `make abi` rewrites the file.
    execFileSync('node', [GEN, '--check', path.join(repoRoot, 'src/datapath/abi.gen.ts'), BAE_O], { cwd: repoRoot });
    const again = generate(dir, [BAE_O]);
    assert.deepEqual(again.STRUCTS, STRUCTS);
    assert.deepEqual(again.ENUMS, ENUMS);
  });

  test('every struct of bae.h, every enum, and #define-free bounds are in it', () => {
    for (const s of ['bae_stats', 'bae_conv', 'bae_conv_dir', 'bae_conv_key', 'bae_flow_key', 'bae_tcp_flow', 'policy_rule', 'policy_event', 'policy_ctl', 'dl_tx_slot', 'dl_tx_ctl']) {
      assert.ok(s in STRUCTS, `struct ${s}`);
    }
    assert.equal(ENUMS.bae_parse.BAE_PARSE_TCP, 0);
    assert.equal(ENUMS.policy_bounds.POLICY_MAX_RULES, 16384);
    assert.equal(ENUMS.policy_delay_bounds.POLICY_DELAY_CLASSES, 8);
    assert.deepEqual(STRUCTS.bae_conv.fields.dir, { offset: 0, size: 2 * STRUCTS.bae_conv_dir.size, type: 'struct bae_conv_dir', dims: [2], elemSize: STRUCTS.bae_conv_dir.size });
    assert.deepEqual(STRUCTS.policy_gen_info.fields.dims.dims, [2, 2]);
  });

  test('a field added to a struct of bae.h is in the generated description with no hand edit', () => {
    // A copy of bae.h with one more field in struct bae_stats and one in the middle of struct
    // bae_conv_dir, compiled into an object whose maps use them, as bae.bpf.c does.
    const header = fs.readFileSync(path.join(repoRoot, 'bpf/bae.h'), 'utf8');
    const withFields = header
      .replace(/(struct bae_stats \{[^}]*?)(\n\};)/, '$1\n\t__u64 extra_counter;$2')
      .replace(/(struct bae_conv_dir \{\n\t__u64 packets;[^\n]*\n)/, '$1\t__u32 extra_gap;\n\t__u32 extra_pad;\n');
    assert.notEqual(withFields, header, 'the fixture header differs from bae.h');
    fs.writeFileSync(path.join(dir, 'bae.h'), withFields);
    const source = path.join(dir, 'fixture.bpf.c');
    fs.writeFileSync(
      source,
      `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bae.h"
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct bae_stats); } stats SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, struct bae_conv_key); __type(value, struct bae_conv); } convs SEC(".maps");
const struct bae_abi bae_abi_anchor = {};
SEC("xdp") int fixture(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
`,
    );
    const fixture = generate(dir, [compileBpf(dir, source)]);
    const stats = fixture.STRUCTS.bae_stats!;
    assert.equal(stats.size, STRUCTS.bae_stats.size + 8);
    assert.deepEqual(stats.fields.extra_counter, { offset: STRUCTS.bae_stats.size, size: 8, type: 'u64' });
    const dirs = fixture.STRUCTS.bae_conv_dir!;
    assert.deepEqual(dirs.fields.extra_gap, { offset: 8, size: 4, type: 'u32' });
    // Every field after it moved by 8 bytes, and the struct that nests it grew with it.
    assert.equal(dirs.fields.bytes!.offset, STRUCTS.bae_conv_dir.fields.bytes.offset + 8);
    assert.equal(dirs.fields.zero_window!.offset, STRUCTS.bae_conv_dir.fields.zero_window.offset + 8);
    assert.equal(fixture.STRUCTS.bae_conv!.size, 2 * dirs.size);
    assert.deepEqual(fixture.ENUMS.bae_parse, ENUMS.bae_parse);
  });

  test('a stale generated file fails the check with a message that says what to run', () => {
    const stale = path.join(dir, 'stale.gen.ts');
    fs.writeFileSync(stale, fs.readFileSync(path.join(repoRoot, 'src/datapath/abi.gen.ts'), 'utf8').replace('size: 208', 'size: 200'));
    assert.throws(
      () => execFileSync('node', [GEN, '--check', stale, BAE_O], { cwd: repoRoot, stdio: 'pipe' }),
      (err: { status: number; stderr: Buffer }) => err.status === 1 && /is stale: .* run `make abi`/.test(err.stderr.toString()),
    );
  });
});
