// Every problem with a policy — syntax, schema, values, capacity of the maps, an action the
// datapath cannot carry out — is a PolicyError naming the file, line, column and policy.
import { BaeError } from '../errors';

export interface PolicyErrorWhere {
  file: string;
  line: number;
  column: number;
  /** The policy's name, or `#n` (its position in the file) before the name is known. */
  policy?: string;
}

export class PolicyError extends BaeError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly policy: string | undefined;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(where: PolicyErrorWhere, detail: string, options: { cause?: unknown } = {}) {
    const who = where.policy === undefined ? '' : ` policy '${where.policy}':`;
    super('BAE_POLICY', `${where.file}:${where.line}:${where.column}:${who} ${detail}`, options);
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
    this.policy = where.policy;
    this.detail = detail;
  }
}
