/** tcp://: raw bytes. Every chunk the socket delivers is one message; TCP has no message boundaries. */
import { SimpleSession } from './simple-session.js';
import type { Message, ProtocolEvents, SharedEncoder } from './types.js';

export const rawEncoder: SharedEncoder = {
  key: 'raw',
  // A string is already wire text (its UTF-8 bytes): core joins a round's text and encodes it once.
  encode: (data: Message) => data,
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
