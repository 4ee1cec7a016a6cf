// Conversation profiles: read from the kernel's bae_convs map, decoded, sorted and rendered.
export { SORT_KEYS, findProfile, profileFromEntry, readProfiles, sortProfiles } from './profiles';
export type { ConversationProfile, DirectionProfile, SortKey } from './profiles';
export { IAT_BUCKET_LABELS, SIZE_BUCKET_LABELS, humanAge, humanCount, renderHistograms, renderTable } from './table';
// The anomaly detector: per-source EWMA baselines over successive profile snapshots.
export { AnomalyDetector, DETECTOR_DEFAULTS, DETECTOR_METRICS, sourceTotals } from './detector';
export type { Anomaly, DetectorMetric, DetectorOptions, ProfileSnapshot, SourceTotals } from './detector';
