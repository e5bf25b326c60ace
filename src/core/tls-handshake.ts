/**
 * A TCP connection to a tls:// or wss:// listener whose TLS handshake is not done. The server holds
 * it like a connection (in its sweeper: it counts against maxConnections, close() ends it) from the
 * TCP accept, so a flood of connects that never finish TLS is bounded like any other. Its deadline
 * is the connection's handshake deadline: the Connection made once TLS is done inherits it, so the
 * TLS handshake and the protocol's share one handshakeTimeout.
 */
import type { Socket } from 'node:net';
import { formatHostPort } from '../address.js';
import { SwitchboardError, transportError } from '../errors.js';
import type { Sweepable, Sweeper } from './sweeper.js';

/** Who holds pending handshakes: the Server. */
export interface HandshakeOwner {
  /** @internal */
  readonly sweeper: Sweeper;
  /** @internal It left the sweeper (TLS done, or the socket closed). */
  handshakeEnded(h: TlsHandshake): void;
  /** @internal It failed for a reason worth telling (not a shutdown): reported once. */
  handshakeFailed(h: TlsHandshake, err: SwitchboardError): void;
}

const kHandshake = Symbol('switchboard.tlsHandshake');
type TaggedSocket = Socket & { [kHandshake]?: TlsHandshake };

const enum State { Pending, Done, Closed }

export class TlsHandshake implements Sweepable {
  /** When the TCP connection was accepted (ms since the epoch). */
  readonly acceptedAt = Date.now();
  private deadline: number;
  private state = State.Pending;
  /** Set once the failure is reported, or when the server ended it (then nothing is reported). */
  private settled = false;

  constructor(readonly tcp: Socket, private readonly owner: HandshakeOwner, private readonly timeout: number) {
    this.deadline = timeout > 0 ? this.acceptedAt + timeout : 0;
    // Read while connected: the socket keeps the peer's address for reports after it closed.
    void tcp.remoteAddress;
    (tcp as TaggedSocket)[kHandshake] = this;
    tcp.on('close', onTcpClose);
    owner.sweeper.add(this);
  }

  /** The pending handshake on this TCP socket, if the server holds one. */
  static of(tcp: Socket): TlsHandshake | undefined {
    return (tcp as TaggedSocket)[kHandshake];
  }

  /** "host:port" of the peer ("[::1]:5000" for IPv6). */
  get remote(): string {
    return formatHostPort(this.tcp.remoteAddress ?? '', this.tcp.remotePort ?? 0);
  }

  sweep(now: number): void {
    if (this.deadline === 0 || now < this.deadline) return;
    this.deadline = 0;
    this.report(new SwitchboardError('ERR_HANDSHAKE_TIMEOUT', `TLS handshake not completed within ${this.timeout} ms`));
    this.tcp.destroy();
  }

  /** Ends it without a report (server shutdown): before TLS there is nothing to say to the peer. */
  destroy(): void {
    this.settled = true;
    this.tcp.destroy();
  }

  /** TLS failed or the peer left (Node's error): reported once, unless the server ended it first. */
  failed(err: Error): void {
    if (this.settled) return;
    this.report(transportError(err, 'ERR_TLS', `TLS handshake with ${this.remote} failed: ${err.message}`));
  }

  private report(err: SwitchboardError): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.handshakeFailed(this, err);
  }

  /** TLS is done: the Connection takes over. Returns false if it is too late (the socket is closing). */
  finish(): boolean {
    if (this.state !== State.Pending || this.tcp.destroyed) return false;
    this.state = State.Done;
    this.settled = true;
    this.tcp.off('close', onTcpClose);
    // Nothing of it is needed for the connection's life (Node reports no handshake error after TLS is done).
    (this.tcp as TaggedSocket)[kHandshake] = undefined;
    this.leave();
    return true;
  }

  /** @internal The TCP socket closed before TLS was done. */
  handleClose(): void {
    if (this.state !== State.Pending) return;
    this.state = State.Closed;
    this.leave();
  }

  private leave(): void {
    this.owner.sweeper.delete(this);
    this.owner.handshakeEnded(this);
  }
}

function onTcpClose(this: Socket): void {
  (this as TaggedSocket)[kHandshake]!.handleClose();
}
