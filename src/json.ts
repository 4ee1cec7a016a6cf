// One JSON encoding for everything bae hands to a program: every command's `--json` and each
// reply of the agent's control socket. The rule is about 64-bit values, which are bigint in bae
// (packet and byte counters, nanosecond timestamps): each becomes a decimal string, always, also
// when it is small. A field keeps one JSON type whatever its value, and no reader loses digits
// past 2^53 (JSON.parse, jq); `tonumber` in jq, Number() or BigInt() in JavaScript read it back.
// This is protobuf's JSON mapping of int64 and uint64. Plain numbers (counts, sizes, ids of 32
// bits) stay numbers. test/shared/json.test.ts keeps src/cli/ from encoding JSON by itself.

/** The type a reader of toJson(value: T) gets: every bigint in T a string. */
export type Json<T> = T extends bigint
  ? string
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** The replacer of JSON.stringify that encodes bigints as decimal strings. */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** `value` as JSON text: bigints as decimal strings; `indent` as JSON.stringify's third argument. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, bigintReplacer, indent);
}

/** What a reader of toJson(value) gets back: bigints become decimal strings, the rest is unchanged. */
export function toJsonValue(value: unknown): unknown {
  const text = toJson(value);
  return text === undefined ? undefined : JSON.parse(text);
}
