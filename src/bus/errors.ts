// The bus's one failure class: a server that cannot be reached or refuses, a request nobody
// answers in time, a message that is not what its subject carries. Its message names the server
// (URL) or the subject, so that the one line the CLI prints says where to look.
import { BaeError, type BaeErrorOptions } from '../errors';

export class BusError extends BaeError {
  constructor(message: string, options?: BaeErrorOptions) {
    super('BAE_BUS', message, options);
  }
}
