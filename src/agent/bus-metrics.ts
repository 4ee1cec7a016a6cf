// The bus's state in the agent's Prometheus metrics (bae_bus_connected, bae_bus_lag_seconds,
// bae_bus_events_buffered, bae_bus_events_dropped_total), read from the bus every second.
import type { Bus } from '../bus';
import type { AgentMetrics } from './metrics';

/** Starts copying `bus`'s state into `metrics`; returns the stop. */
export function feedBusMetrics(bus: Bus, metrics: AgentMetrics, periodMs = 1000): () => void {
  let dropped = 0;
  const read = () => {
    const s = bus.state() as ReturnType<Bus['state']> & { eventsBuffered?: number; eventsInFlight?: number; eventsDropped?: number; eventLagMs?: number };
    metrics.setBusConnected(s.connected);
    metrics.setBusBuffered((s.eventsBuffered ?? 0) + (s.eventsInFlight ?? 0));
    metrics.setBusLag((s.eventLagMs ?? 0) / 1000);
    const d = s.eventsDropped ?? 0;
    if (d > dropped) metrics.countBusEventsDropped(d - dropped);
    dropped = d;
  };
  read();
  const timer = setInterval(read, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
