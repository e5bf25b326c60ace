/**
 * One listener's context: what every connection of one listen address (or one attached
 * endpoint, or one connect() call) has in common, built once when the listener is set up and
 * handed to each Connection. It holds the limits, the listener's counters, and the factory that
 * makes each connection's protocol session from the listener's typed options (for WebSocket:
 * deflate settings, header limits, the handshake policy and the optional native XOR loop), so
 * nothing is derived again per connection and nothing is looked up by identity.
 */
import type { Address } from '../address.js';
import type { SessionFactory } from '../codec/types.js';
import { nativeXor } from '../transport/mask.js';
import type { ConnectionLimits, ConnectionOwner } from './connection.js';
import { listenerStats, type ListenerStats } from './metrics.js';
import { sessionFactory } from './protocols.js';
import type { WebSocketClientOptions, WebSocketServerOptions } from './protocols/websocket.js';

export interface ListenerContext {
  readonly role: 'server' | 'client';
  readonly address: Address;
  readonly owner: ConnectionOwner;
  readonly limits: ConnectionLimits;
  /** Datagram transports write each message as it comes (joining would merge datagrams). */
  readonly batched: boolean;
  /** The listener's counters (see metrics.ts): one field added per read, flush or message. */
  readonly stats: ListenerStats;
  /** Makes the protocol session of each connection. */
  readonly newSession: SessionFactory;
}

/**
 * @internal
 * Builds a listener's context. `websocket` is read here once (ws:// and wss:// only); bad
 * options throw ERR_INVALID_OPTION now, before any connection.
 */
export function listenerContext(owner: ConnectionOwner, address: Address, role: 'server' | 'client', limits: ConnectionLimits,
  websocket: Readonly<WebSocketServerOptions & WebSocketClientOptions> = {}): ListenerContext {
  return {
    role,
    address,
    owner,
    limits,
    batched: address.transport !== 'udp',
    stats: listenerStats(address),
    newSession: sessionFactory(address, role, limits.maxMessageSize, websocket, nativeXor),
  };
}
