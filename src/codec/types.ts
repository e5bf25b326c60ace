/**
 * The contract between core/ and every wire protocol.
 *
 * A protocol is sans-I/O: core feeds it the bytes a socket received (`receive`), it reports
 * what they meant through `ProtocolEvents`, and it turns outgoing messages into bytes
 * (`encode`) that core writes. It never touches a socket, a timer or `process`.
 */
import type { SwitchboardError } from '../errors.js';

/** A message: text protocols give and take strings, binary ones Buffers. */
export type Message = string | Buffer;

export interface CloseInfo {
  /**
   * WebSocket: the close code of the close handshake (CloseCode: sent or received; 1006 when there
   * was none). Every other protocol has no close code on the wire and reports StreamCloseCode:
   * 1000 when it ended without an error, 1006 when it ended for one (`error` says which) or was cut.
   */
  code: number;
  reason: string;
  /** Set when the connection ended because of an error (bad input, a limit, a timeout). */
  error?: SwitchboardError;
}

/**
 * The close codes of raw (tcp://, udp://), line (text://) and frame (frame://) connections. They
 * have no close message, so a close says only whether it was clean; the numbers are WebSocket's
 * 1000 and 1006 so that `info.code === 1000` means a clean end on every protocol.
 */
export const StreamCloseCode = {
  /** Ended without an error: an EOF from either side, close(), server.close(). */
  NORMAL: 1000,
  /** Ended for an error (a bad message, a limit, a timeout, a socket error) or cut without an end. */
  ABNORMAL: 1006,
} as const;

/** What a protocol reports while it decodes. Core's Connection implements this. */
export interface ProtocolEvents {
  /** @internal The protocol is ready for messages: at once for raw/line/frame, after the handshake for WebSocket. */
  onOpen(): void;
  /** @internal One whole message from the peer. */
  onMessage(data: Message): void;
  /**
   * @internal
   * Bytes the protocol itself must send: a handshake answer, a pong, a close echo, an HTTP reply.
   * `last` marks the bytes that go with the end (a close echo, an error's close frame or reply):
   * core sends them after the application's answers to the messages that came before them.
   */
  onWrite(bytes: Buffer, last?: boolean): void;
  /**
   * @internal
   * The protocol is finished with this connection: the peer closed it cleanly, or it broke a rule
   * (then `info.error` is set; any error reply was already passed to onWrite). Core flushes
   * what is queued and closes the transport.
   */
  onEnd(info: CloseInfo): void;
  /** @internal A pong arrived (WebSocket); liveness is tracked by core on any received byte anyway. */
  onPong?(payload: Buffer): void;
  /**
   * @internal
   * The session did its share of work for this event-loop round (WebSocket: it inflated its
   * budget) and keeps the rest of its input. Core stops reading the socket and calls
   * `session.resume()` in a later round, so that other connections are served in between.
   * Without this hook a session never holds input.
   */
  onYield?(): void;
}

/**
 * What goes on the wire: bytes, or text whose UTF-8 encoding is the bytes. Text lets core join
 * the text a connection is sent in one event-loop round and encode it once (one allocation and
 * one UTF-8 write per flush instead of one per message).
 */
export type Wire = Buffer | string;

/** The bytes of a Wire. */
export function wireBytes(wire: Wire): Buffer {
  return typeof wire === 'string' ? Buffer.from(wire, 'utf8') : wire;
}

/**
 * Encodes a message to bytes that are the same for every session with the same `key`,
 * so a broadcast encodes once per wire format and writes those bytes to every receiver.
 */
export interface SharedEncoder {
  readonly key: string;
  encode(data: Message): Wire;
}

/**
 * How a protocol ends, as questions core asks the session instead of testing the protocol's name.
 * Kept apart from the session's other members: these are rules, fixed per protocol.
 */
export interface EndingRules {
  /**
   * What EOF from the peer (a half-close) means.
   * - 'finished': the peer is done sending; replies to what it sent are still written, then core
   *   closes its side too, and the close is clean (1000). (raw, line, frame: EOF is their end.)
   * - 'aborted': the protocol has a close message of its own, so EOF without it is an abrupt end
   *   (1006); core stops at once, unless the close handshake had begun. (WebSocket.)
   */
  readonly peerEof: 'finished' | 'aborted';
  /**
   * How core tells the peer that a server limit closes it.
   * - 'message': refuse(reason) is sent as one last message, then the connection closes.
   * - 'close': the protocol's close message carries the code and reason (close(code, reason)).
   */
  readonly limitNotice: 'message' | 'close';
  /**
   * Whether the peer's input is still read after a rate limit closed the connection: true when
   * the protocol's close handshake needs the peer's answer (WebSocket's close frame).
   */
  readonly readsWhileClosing: boolean;
}

export interface ProtocolSession extends EndingRules {
  /**
   * Called once by core after the connection is registered. Protocols that are ready at once call
   * events.onOpen() here; a WebSocket client sends its handshake request here.
   */
  start(): void;
  /** Feed bytes from the peer; events fire synchronously from inside this call (or later, for async hooks). */
  receive(chunk: Buffer): void;
  /** Bytes for one message to this peer alone (may use per-connection state such as a compression context). */
  encode(data: Message): Wire;
  /** The encoder that broadcasts use; sessions that can share bytes return the same object. */
  readonly shared: SharedEncoder;
  /**
   * Begin a graceful close. Returns the bytes to send (a WebSocket close frame), or null when the
   * protocol has no close message. `awaitsPeer` says whether core should wait for onEnd before
   * closing the transport (the WebSocket close handshake).
   */
  close(code?: number, reason?: string): { bytes: Buffer | null; awaitsPeer: boolean };
  /** Bytes that tell a client it was refused (server full) before it is closed. */
  refuse(reason: string): Buffer;
  /**
   * The peer sent EOF (half-close). A protocol may deliver what it still holds (the line protocol
   * delivers an unterminated last line). Optional.
   */
  finish?(): void;
  /**
   * 0 when no message is partly received; otherwise a number naming the one in progress, the
   * same until it completes and different for the next. Core's sweep closes a connection whose
   * number stays for `messageTimeout` (so nothing is timed per message). Optional.
   */
  pendingMessage?(): number;
  /**
   * The handshake timed out: bytes that tell the peer so before the connection closes (an HTTP
   * 408 to a request head that never finished), or null. Optional.
   */
  timeoutReply?(): Buffer | null;
  /** Goes on with the input kept since onYield(); may call onYield() again. Optional. */
  resume?(): void;
  /** A liveness probe (WebSocket ping); null when the protocol has none. */
  ping?(payload?: Buffer): Buffer | null;
  /**
   * How the end shows to the application. Core names a close by the WebSocket code it would send
   * (1001 for server.close(), 1008 for a limit, ...); a protocol without close codes of its own
   * reports them as StreamCloseCode. Optional: WebSocket reports the codes as they are.
   */
  reportClose?(info: CloseInfo): CloseInfo;
  /** Release resources (zlib streams and such). Called once when the connection is gone. */
  destroy?(): void;
}

export interface RemoteInfo {
  address: string;
  port: number;
  family: string;
}

/**
 * Makes the session of each connection of one listener. Core builds one per listener (or
 * connect() call) from that listener's typed options, so a session gets its settings without
 * a per-connection options object or a lookup; `remote` is the peer of this connection.
 */
export type SessionFactory = (events: ProtocolEvents, remote: RemoteInfo) => ProtocolSession;
