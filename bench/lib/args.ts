// Small pieces every benchmark uses: whole-number options and the statistics of rounds.

/** `--name N` from argv: a whole number of at least 1, `fallback` when absent; exit 2 otherwise. */
export function wholeOption(bench: string, name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`${bench}: --${name} needs a positive integer, got '${process.argv[i + 1] ?? ''}'\n`);
    process.exit(2);
  }
  return v;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;
