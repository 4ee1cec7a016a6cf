// A child process for the store's durability tests: writes packets through a StoreWriter as fast
// as it can (bounded by count and time), and prints a line `committed N` after every committed
// batch, `failed <code> <message>` after every failed one, and `alive N` when it has written all it
// was asked and is still running. Usage: node heavy-writer.js FILE COUNT SECONDS [SIZE]
import { StoreWriter } from '../../src/store';
import { packet } from './frames';

async function main(): Promise<void> {
  const [file, countText, secondsText, sizeText] = process.argv.slice(2);
  const count = Number(countText);
  const deadline = Date.now() + Number(secondsText) * 1000;
  const size = Number(sizeText ?? 128);
  const out = (line: string) => process.stdout.write(line + '\n');
  const w = await StoreWriter.open({
    file: file!,
    batchRows: 2048,
    batchMs: 10,
    maxPendingRows: 16_384,
    onCommit: (table, _rows, totals) => table === 'packets' && out(`committed ${totals.packets}`),
    onError: (err) => out(`failed ${err.sqliteCode ?? '-'} ${err.message}`),
  });
  let seq = 0;
  // Rows go in order; a row the writer refuses (it lags) is offered again, so that what is
  // committed is always rows 0..N-1.
  while (seq < count && Date.now() < deadline) {
    while (seq < count && w.writePacket(packet(seq, { size }))) seq++;
    await new Promise((r) => setImmediate(r));
  }
  await w.flush();
  out(`alive ${seq}`);
  // Stay up until told (stdin closes) or the time is out: the parent checks we are alive.
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve).on('close', resolve).resume();
    setTimeout(resolve, Math.max(0, deadline - Date.now())).unref();
  });
  await w.close();
}

main().catch((err: unknown) => {
  process.stderr.write(String((err as Error).stack ?? err) + '\n');
  process.exit(1);
});
