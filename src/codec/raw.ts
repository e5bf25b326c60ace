/** tcp://: raw bytes. Every chunk the socket delivers is one message; TCP has no message boundaries. */
import { SimpleSession } from './simple-session.js';
import type { Message, ProtocolEvents, SharedEncoder } from './types.js';

export const rawEncoder: SharedEncoder = {
  key: 'raw',
  encode: (data: Message) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data),
};

export class RawSession extends SimpleSession {
  constructor(events: ProtocolEvents) {
    super(events, rawEncoder);
  }

  protected decode(chunk: Buffer): void {
    this.events.onMessage(chunk);
  }

  /** Raw bytes have no framing: the reason goes as one line. */
  override refuse(reason: string): Buffer {
    return Buffer.from(reason + '\n', 'utf8');
  }
}
