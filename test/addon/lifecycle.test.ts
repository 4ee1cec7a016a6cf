import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadCollection } from '../../src/datapath';
import { native } from '../../src/datapath/native';
import { runNodeChild } from '../lib/child';
import { bpfFixture, datapathModule } from '../lib/fixtures';

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

describe('lifetime of kernel objects', () => {
  test('a worker that ends with a collection and a ring buffer still open releases them (environment cleanup hook)', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const dp = require(${JSON.stringify(datapathModule)});
       const coll = dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))});
       new dp.RingBuffer(coll.map('events'), () => {});
       parentPort.postMessage({ progId: coll.program('xdp_pass').id, mapId: coll.map('big').id });`,
      { eval: true },
    );
    const ids = await new Promise<{ progId: number; mapId: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.ok(native.progInfoById(ids.progId), 'the program is loaded while the worker runs');
    await worker.terminate();
    // The kernel frees a program once its last descriptor is gone (after an RCU grace period).
    assert.ok(await until(() => native.progInfoById(ids.progId) === undefined, 3000), 'program still loaded after the worker ended');
  });

  test('closing a collection unloads its programs', async () => {
    const coll = loadCollection(bpfFixture('addon_fixture'));
    const id = coll.program('xdp_fixture').id;
    coll.close();
    assert.ok(await until(() => native.progInfoById(id) === undefined, 3000));
  });

  test('an unref()ed ring buffer does not keep the process alive, a ref()ed one does until close()', async () => {
    const exited = await runNodeChild<string>(
      `const coll = dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))});
       const rb = new dp.RingBuffer(coll.map('events'), () => {}).unref();
       process.on('exit', () => process.stdout.write('\\n@@result "exited"\\n'));`,
      { timeoutMs: 10_000, label: 'unref child' },
    );
    assert.equal(exited, 'exited');
    const closed = await runNodeChild<string>(
      `const coll = dp.loadCollection(${JSON.stringify(bpfFixture('addon_fixture'))});
       const rb = new dp.RingBuffer(coll.map('events'), () => {});
       setTimeout(() => { rb.close(); coll.close(); }, 200);
       const started = Date.now();
       process.on('exit', () => process.stdout.write('\\n@@result "' + (Date.now() - started >= 190 ? 'held' : 'not held') + '"\\n'));`,
      { timeoutMs: 10_000, label: 'ref child' },
    );
    assert.equal(closed, 'held');
  });
});
