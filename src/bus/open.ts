// One way to get a bus: NATS when a URL is given, else the in-process bus.
import type { Bus } from './bus';
import { MemoryBus } from './memory';
import { NatsBus, type NatsBusOptions } from './nats';

export interface OpenBusOptions extends Partial<NatsBusOptions> {
  /** NATS URL(s); absent: the in-process bus. */
  url?: string;
}

export async function openBus(opts: OpenBusOptions = {}): Promise<Bus> {
  if (opts.url === undefined || opts.url === '') return new MemoryBus();
  return NatsBus.open({ ...opts, url: opts.url });
}
