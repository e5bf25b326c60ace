/** switchboard: the public API. Everything not exported here is internal. */
export { Server, type ServerOptions, type ServerEvents, type CloseOptions, DEFAULT_LIMITS } from './core/server.js';
export { startAdmin, type AdminOption, type AdminStatus, type AdminHandle, type AdminView } from './core/admin.js';
export type { Snapshot, ListenerSnapshot } from './core/metrics.js';
export { Connection, type ConnectionEvents, type ConnectionLimits, type ReplayInfo, type SubscribeOptions, type TopicWriter } from './core/connection.js';
export { TopicsWire, WIRE_MARK, WIRE_DEFAULTS, type WireOptions, type WireAction, type WireAuthorize, type WireRequestHandler } from './core/topics-wire.js';
export { connect, type ConnectOptions } from './core/client.js';
export type { AttachOptions } from './core/attach.js';
export type {
  WebSocketServerOptions, WebSocketClientOptions, PerMessageDeflateOptions, VerifyClientInfo, VerifyClientResult, HttpRequest, HttpResponse,
} from './core/protocols/websocket.js';
export type { RateLimitOptions, LimitStats } from './core/rate-limit.js';
export type { AcceptHook, AcceptRemote } from './core/admission.js';
export { reconnecting, backoffDelay, ReconnectingClient, type ReconnectOptions, type ReconnectingEvents } from './core/reconnect.js';
export { parseAddress, formatHostPort, KNOWN_SCHEMES, type Address, type Transport, type ProtocolName } from './address.js';
export {
  SwitchboardError, ProtocolError, ERROR_CODES, SYSTEM_ERROR_CODES, isErrorCode, kindOf,
  type ErrorCode, type ErrorKind, type SwitchboardCode, type SystemErrorCode,
} from './errors.js';
export { HandshakeRefusedError } from './codec/websocket/handshake.js';
export { StreamCloseCode, type Message, type CloseInfo } from './codec/types.js';
export { CloseCode } from './codec/websocket/close-codes.js';
export { createHub, MemoryHub, RedisHub, RedisStreamsHub, ClusterHub, NatsHub, RedisClusterHub } from './hubs/index.js';
export type { Hub, HubListener, HubLog, HubSpec, HubOptions, RedisHubOptions, RedisStreamsHubOptions, MemoryHubOptions, HistoryOptions,
  HistoryEntry, HistoryQuery, HistoryResult, ReplayGap, ClusterHubOptions, PeerStats, NatsHubOptions, RedisClusterHubOptions } from './hubs/index.js';
export type { HubPresence, PresenceEntry, PresenceListing } from './hubs/index.js';
export type { Presence, PresenceMember, PresenceMeta, PresenceOptions } from './core/presence.js';
export { runWorkers, type WorkersHandle, type RunWorkersOptions, type StartWorker, type StopWorker, type StopHow } from './core/workers.js';
export { probePorts, type ProbeResult, type ProbeOptions } from './core/probe.js';
export {
  ackServer, chatServer, daytimeServer, echoServer, greetServer, reverseServer, udpEchoServer, type AppOptions,
} from './apps/index.js';
