/** Which ProtocolSession runs for each protocol name of an address. */
import type { ProtocolName } from '../address.js';
import type { ProtocolFactory } from '../codec/types.js';
import { RawSession } from '../codec/raw.js';
import { LineSession } from '../codec/line.js';
import { FrameSession } from '../codec/frame.js';
import { websocketFactory } from './protocols/websocket.js';

export const protocolFactories: Record<ProtocolName, ProtocolFactory> = {
  raw: (events) => new RawSession(events),
  line: (events, ctx) => new LineSession(events, ctx.maxMessageSize),
  frame: (events, ctx) => new FrameSession(events, ctx.maxMessageSize),
  ws: websocketFactory,
};
