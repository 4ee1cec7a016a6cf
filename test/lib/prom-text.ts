// A parser of the Prometheus text exposition format (version 0.0.4), for tests that scrape a real
// endpoint: families with their HELP and TYPE, samples with labels (escapes undone) and values.
// Strict: a line it does not understand throws, so a malformed page fails the test.

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help?: string;
  type?: string;
  samples: PromSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+(-?\\d+))?$`);
const SUFFIXES = ['_total', '_bucket', '_sum', '_count', '_created'];

function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new Error(`bad labels in exposition line: ${line}`);
    if (m[1]! in labels) throw new Error(`label ${m[1]} twice in: ${line}`);
    labels[m[1]!] = unescape(m[2]!);
    at = re.lastIndex;
  }
  return labels;
}

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const v = Number(s);
  if (s === '' || Number.isNaN(v)) throw new Error(`bad value in exposition line: ${line}`);
  return v;
}

export function parseExposition(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) ?(.*)$`).exec(line);
      if (!m) continue; // a plain comment
      const f = family(m[2]!);
      if (m[1] === 'HELP') f.help = unescape(m[3]!);
      else f.type = m[3]!;
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const name = m[1]!;
    // A sample belongs to the family it names, or to the one its suffix extends (a counter's _total).
    let owner = families.has(name) ? name : undefined;
    for (const sfx of SUFFIXES) if (!owner && name.endsWith(sfx) && families.has(name.slice(0, -sfx.length))) owner = name.slice(0, -sfx.length);
    family(owner ?? name).samples.push({ name, labels: m[2] ? parseLabels(m[2], line) : {}, value: parseValue(m[3]!, line) });
  }
  return families;
}

/** The value of the one sample `name` with exactly `labels`; throws when there is none. */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values()) {
    for (const s of f.samples) if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
  }
  throw new Error(`no sample ${name}${JSON.stringify(labels)} in the exposition`);
}
