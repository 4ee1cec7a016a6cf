// The emulation area: the AF_XDP delay line and netem's jitter distributions.
export {
  DelayLine,
  delayLineKey,
  checkDelayParams,
  latenessQuantileNs,
  latenessSince,
  DEFAULT_DELAY_PARAMS,
  DELAY_CLASSES_MAX,
  DELAY_PORTS_MAX,
  DELAY_MAX_MS,
  DELAY_TX_MAPS,
  DEFAULT_MAX_LATE_MS,
} from './delay-line';
export type {
  DelayLineCloseResult,
  DelayLineOptions,
  DelayLinePort,
  DelayLineTransmit,
  DelayLineStats,
  DelayParams,
  DelaySamples,
  LatenessBucket,
  OverflowRule,
} from './delay-line';
export {
  JITTER_DISTRIBUTIONS,
  DISTRIBUTION_CODES,
  NETEM_TABLE_CLAMP,
  NETEM_TABLE_SIZE,
  isJitterDistribution,
  delayCdf,
  unitCdf,
  normalCdf,
  normalQuantile,
  paretoQuantile,
  paretoNormalQuantile,
} from './jitter';
export type { JitterDistribution } from './jitter';
