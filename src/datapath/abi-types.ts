// The shape of src/datapath/abi.gen.ts, which scripts/gen-abi.mjs generates from the BTF of
// build/bpf/bae.o: the kernel ABI as the compiler laid it out, never restated by hand.

export interface AbiField {
  /** Bytes from the start of the struct. */
  offset: number;
  /** Bytes of the whole field (every element of an array). */
  size: number;
  /** 'u8' ... 'u64', 's8' ... 's64', 'bool', 'pointer', 'enum NAME', 'struct NAME', 'union NAME'. */
  type: string;
  /** Array dimensions, outermost first (absent for a scalar or a struct). */
  dims?: readonly number[];
  /** Bytes of one element of an array. */
  elemSize?: number;
}

export interface AbiStruct {
  name: string;
  size: number;
  /** Every member by its C name, in declaration order, pad fields included. */
  fields: Readonly<Record<string, AbiField>>;
}

/** An enum's constants by their C names. */
export type AbiEnum = Readonly<Record<string, number>>;
