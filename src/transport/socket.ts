/**
 * The one socket shape under core's Connection. Three transports implement it: the native TCP
 * socket (native.ts), node:net and node:tls sockets through an adapter (net-socket.ts), and a UDP
 * peer (udp.ts). Connection sees only this: it never asks which transport it runs on.
 */

/** What a socket reports, as direct calls (Connection implements it). */
export interface SocketSink {
  handleData(chunk: Buffer): void;
  /** The peer half-closed (EOF). */
  handleEnd(): void;
  /** A read or write failed; handleClose follows. */
  handleError(err: Error): void;
  /** The socket is gone; nothing more is reported. */
  handleClose(): void;
  /** What the socket holds fell from over its high-water mark (reported once watchDrain() was called). */
  handleDrain(): void;
}

export interface TransportSocket {
  readonly destroyed: boolean;
  /** Bytes handed to write() and not yet to the kernel. */
  readonly writableLength: number;
  /** From this many held bytes write() answers false ("wait for drain"). */
  readonly writableHighWaterMark: number;
  readonly writableNeedDrain: boolean;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;

  /** From now on events go to `sink` (called once, by the Connection that takes the socket). */
  bind(sink: SocketSink): void;
  /** The sink wants handleDrain from now on (asked the first time it matters: an idle connection never pays for it). */
  watchDrain(): void;
  /**
   * Runs `run` once the input this event-loop round read has been handled: after the native
   * transport's batch of events, or in the check phase (setImmediate) elsewhere. Writes caused by
   * many reads of one round (pipelined requests, a chat fan-out) leave together this way.
   */
  afterRound(run: () => void): void;

  /** False: over the high-water mark, wait for drain (the bytes are still taken). */
  write(bytes: Buffer): boolean;
  /** Several buffers in one call (one writev where the transport has it). */
  writev(chunks: readonly Buffer[]): boolean;
  /** Half-closes once what is held has been written. */
  end(): void;
  /** Closes at once; what is held is dropped. */
  destroy(): void;
  pause(): void;
  resume(): void;
  isPaused(): boolean;
}

/** A stream socket as a listener hands it out: the socket shape, plus TCP keepalive. */
export interface StreamSocket extends TransportSocket {
  setKeepAlive(enable: boolean, initialDelay: number): void;
}
