// `bae status` shows the verifier's cost of the program it runs, as the kernel reports it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { loadCollection } from '../../src/datapath';
import { CONSTANTS, Mode } from '../../src/datapath/layout';
import { DEFAULT_OBJECT } from '../../src/datapath/loader';
import { bae } from '../lib/bae-cli';
import { testPinDir } from '../lib/fixtures';
import { createNetnsWithVeth, type NetnsWithVeth } from '../lib/netns';

describe('bae status', () => {
  let ns: NetnsWithVeth;
  const pinDir = testPinDir('sta');
  const inNs = (args: string[]) => bae([...args, '--pin-dir', pinDir], { prefix: ['nsenter', `--net=${ns.path}`, '--'] });

  before(() => {
    ns = createNetnsWithVeth('sta');
  });
  after(() => {
    try {
      inNs(['unload']);
    } finally {
      fs.rmSync(pinDir, { recursive: true, force: true });
      ns.remove();
    }
  });

  test('shows the loaded program and the instructions the verifier processed to accept it', () => {
    const loaded = inNs(['load', '--iface', ns.veth[0]]);
    assert.equal(loaded.status, 0, loaded.stderr);
    const st = JSON.parse(inNs(['status', '--json']).stdout) as { program?: { id: number; name: string; verifiedInsns: number }; ports: { progId: number }[] };
    assert.ok(st.program, 'status --json has the program');
    assert.equal(st.program.id, st.ports[0]!.progId);
    assert.equal(st.program.name, 'bae_xdp');
    // The verifier is deterministic: a fresh load of the same object in the same mode costs the same.
    const fresh = loadCollection(DEFAULT_OBJECT, { constants: { [CONSTANTS.mode]: Mode.ingress } });
    try {
      assert.equal(st.program.verifiedInsns, fresh.program('bae_xdp').verifiedInsns);
    } finally {
      fresh.close();
    }
    assert.ok(st.program.verifiedInsns > 0);
    const human = inNs(['status']);
    assert.equal(human.status, 0, human.stderr);
    const figure = st.program.verifiedInsns.toLocaleString('en-US');
    assert.match(
      human.stdout,
      new RegExp(`^  program: +bae_xdp \\(id ${st.program.id}\\), ${figure} instructions verified \\(bae's budget 250,000, the kernel's limit 1,000,000\\)$`, 'm'),
    );
  });
});
