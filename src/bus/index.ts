// The bus area: bae's message bus (docs/bus.md). One contract (Bus), two implementations: NATS
// (with a JetStream stream of events) and the in-process bus of the embedded default; the
// subjects; SecBeat's BlockCommand.
export type { Bus, BusHandler, BusMessage, BusState, BusSubscription, RequestOptions } from './bus';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './bus';
export { BusError } from './errors';
export { MemoryBus } from './memory';
export { NatsBus, EVENT_STREAM, NODE_STREAM, checkNatsUrl, redactUrl } from './nats';
export type { NatsBusOptions, NatsBusState } from './nats';
export type { StoredEvent, StreamReadOptions } from './stream-read';
export { authOptions, reconnectWait, MAX_RECONNECT_WAIT_MS, MIN_RECONNECT_WAIT_MS } from './nats-connect';
export type { NatsAuth } from './nats-connect';
export { EventQueue, DEFAULT_EVENT_BUFFER } from './event-queue';
export { ALL_EVENT_BATCHES, EVENT_BATCH_PREFIX, EVENT_BATCH_VERSION, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES, eventBatchSubject, unpackStoredMessage } from './event-batch';
export type { UnpackedEvent } from './event-batch';
export { LINGER_MS, MAX_ACKS_IN_FLIGHT } from './event-publisher';
export { COMMAND_STREAM, keptSubject } from './durable';
export type { DurableSubscription } from './durable';
export { makeMessage } from './message';
export { SUBJECTS, checkPattern, checkSubject, checkToken, nodeNameOf, subjectMatches } from './subjects';
export { MAX_PAYLOAD, JsonText } from './message';
export { parseBlockCommand, newBlockCommand, SeenIds } from './block-command';
export type { BlockCommand, CheckedBlockCommand } from './block-command';
export { openBus } from './open';
export type { OpenBusOptions } from './open';
export { LIVE_PERIODS, isHeartbeat, viewNodes } from './heartbeat';
export type { Heartbeat, NodeView } from './heartbeat';
