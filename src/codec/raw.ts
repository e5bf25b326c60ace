/** tcp://: raw bytes. Every chunk the socket delivers is one message; TCP has no message boundaries. */
import type { Message, ProtocolEvents, ProtocolSession, SharedEncoder } from './types.js';

export const rawEncoder: SharedEncoder = {
  key: 'raw',
  encode: (data: Message) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data),
};

export class RawSession implements ProtocolSession {
  readonly shared = rawEncoder;
  constructor(private readonly events: ProtocolEvents) {}
  start(): void {
    this.events.onOpen();
  }
  receive(chunk: Buffer): void {
    this.events.onMessage(chunk);
  }
  encode(data: Message): Buffer {
    return rawEncoder.encode(data);
  }
  close(): { bytes: Buffer | null; awaitsPeer: boolean } {
    return { bytes: null, awaitsPeer: false };
  }
  refuse(reason: string): Buffer {
    return Buffer.from(reason + '\n', 'utf8');
  }
}
