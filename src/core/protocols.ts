/** Which ProtocolSession runs for each protocol name of an address, made once per listener. */
import type { Address } from '../address.js';
import type { SessionFactory } from '../codec/types.js';
import type { WordXor } from '../codec/websocket/mask.js';
import { RawSession } from '../codec/raw.js';
import { LineSession } from '../codec/line.js';
import { FrameSession } from '../codec/frame.js';
import { websocketSessions, type WebSocketOptions } from './protocols/websocket.js';

/** The session factory of one listener; `xor` is the optional native XOR loop for WebSocket masking. */
export function sessionFactory(address: Address, role: 'server' | 'client', maxMessageSize: number,
  websocket: Readonly<WebSocketOptions>, xor: WordXor | undefined): SessionFactory {
  switch (address.protocol) {
    case 'raw': return (events) => new RawSession(events);
    case 'line': return (events) => new LineSession(events, maxMessageSize);
    case 'frame': return (events) => new FrameSession(events, maxMessageSize);
    case 'ws': return websocketSessions(address, role, maxMessageSize, websocket, xor);
  }
}
