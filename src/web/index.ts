// The web area: the live view the agent serves (`bae agent --http`: JSON APIs, pushed updates,
// the page built from web/), and the conversation table that `bae top` shares with it.
export { WEB_SORT_KEYS, MAX_PAGE_ROWS, ConversationSnapshot, ConversationSource, checkSortKey, parseFilter } from './conversations';
export type { ConversationPage, ConversationQuery, ConversationRow, WebSortKey } from './conversations';
export { WebAuth, isLoopback, isLoopbackHost, loadToken, MAX_SESSIONS, SESSION_COOKIE } from './auth';
export { WebServer, parseHttpListen, DEFAULT_PUSH_MS, DEFAULT_ASSETS_DIR, MAX_STREAM_CLIENTS, MAX_EVENTS_PER_PUSH, RECENT_EVENTS } from './server';
export type { WebListen, WebServerOptions } from './server';
export { LiveState } from './view';
export type { SharedView, WebSources } from './view';
export { renderTop } from './top';
export type { TopFrame } from './top';
export { FleetWatch, MAX_FLEET_NODES } from './fleet';
export type { FleetView } from './fleet';
export { REMOTE_TIMEOUT_MS, fetchView, parseViewUrl, topFrameOf } from './remote';
export type { RemoteView } from './remote';
