// Paths of build outputs that tests load, and names for kernel objects a test makes.
import path from 'node:path';

// dist/test/lib/fixtures.js -> <repo>
export const repoRoot = path.resolve(__dirname, '../../..');

/** A BPF test fixture built by `make` from bpf/test/<name>.bpf.c. */
export function bpfFixture(name: string): string {
  return path.join(repoRoot, 'build/bpf/test', `${name}.o`);
}

/** The compiled entry of the datapath wrapper, for child processes that require it. */
export const datapathModule = path.join(repoRoot, 'dist/src/datapath/index.js');

/** A pin directory of this test process: /sys/fs/bpf/bae-test-<pid>-<tag>. */
export function testPinDir(tag: string): string {
  return `/sys/fs/bpf/bae-test-${process.pid}-${tag}`;
}
