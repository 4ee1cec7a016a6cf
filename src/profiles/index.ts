// Conversation profiles: read from the kernel's bae_convs map, decoded, sorted and rendered.
export { SORT_KEYS, findProfile, profileFromEntry, readProfiles, sortProfiles } from './profiles';
export type { ConversationProfile, DirectionProfile, SortKey } from './profiles';
export { humanAge, humanCount, renderTable } from './table';
