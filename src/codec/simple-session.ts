/**
 * The session shape of the protocols without a handshake (raw, line, frame): open at once, no
 * close message. Subclasses decode bytes into messages and throw ProtocolError on bad input,
 * which ends the connection, after `errorReply` where the protocol has a way to say why.
 */
import type { ProtocolError } from '../errors.js';
import { decodeError } from './alloc.js';
import { StreamCloseCode, wireBytes, type CloseInfo, type Message, type ProtocolEvents, type ProtocolSession, type SharedEncoder, type Wire } from './types.js';

const NO_CLOSE_MESSAGE = { bytes: null, awaitsPeer: false } as const;

export abstract class SimpleSession implements ProtocolSession {
  protected ended = false;

  constructor(protected readonly events: ProtocolEvents, readonly shared: SharedEncoder) {}

  /** Passes each message that `chunk` completes to this.events.onMessage; throws ProtocolError on bad input. */
  protected abstract decode(chunk: Buffer): void;

  /** What to tell the peer before a bad input closes it (nothing by default). */
  protected errorReply(_err: ProtocolError): Buffer | null {
    return null;
  }

  start(): void {
    this.events.onOpen();
  }

  receive(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.decode(chunk);
    } catch (caught) {
      const err = decodeError(caught);
      if (err === null) throw caught;
      this.ended = true;
      const reply = this.errorReply(err);
      if (reply) this.events.onWrite(reply, true);
      this.events.onEnd({ code: err.closeCode, reason: err.message, error: err });
    }
  }

  encode(data: Message): Wire {
    return this.shared.encode(data);
  }

  close(): { bytes: Buffer | null; awaitsPeer: boolean } {
    return NO_CLOSE_MESSAGE;
  }

  /** No close codes on the wire: only whether the end was clean (StreamCloseCode). */
  reportClose(info: CloseInfo): CloseInfo {
    const code = info.error === undefined && info.code !== StreamCloseCode.ABNORMAL ? StreamCloseCode.NORMAL : StreamCloseCode.ABNORMAL;
    return code === info.code ? info : { ...info, code };
  }

  refuse(reason: string): Buffer {
    return wireBytes(this.shared.encode(reason));
  }

  // EndingRules: EOF is these protocols' end, and they have no close message to carry a reason.
  get peerEof(): 'finished' {
    return 'finished';
  }
  get limitNotice(): 'message' {
    return 'message';
  }
  get readsWhileClosing(): boolean {
    return false;
  }
}
