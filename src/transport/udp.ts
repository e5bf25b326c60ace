/**
 * UDP under the same Connection shape as streams. A datagram socket has no connections, so each
 * remote endpoint (address and port) becomes a PeerSocket: the socket shape core uses
 * (TransportSocket) with each datagram one read and each write one datagram. Peers are forgotten
 * by the idle sweep (UDP has no close), and each listener's table of peers is bounded by maxPeers:
 * when it is full, the least recently active peer is forgotten to make room. Refusing the new one
 * instead would let anyone who sends from maxPeers source ports lock every real client out until
 * the old entries time out.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Address } from '../address.js';
import { SwitchboardError } from '../errors.js';
import type { SocketSink, TransportSocket } from './socket.js';

/** The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes). */
export const MAX_UDP_PAYLOAD = 65507;

/**
 * A peer moves to the recent end of the table at most once in this many ms: a Map delete and set
 * per datagram would cost more than the order is worth, and eviction only needs "quiet the longest".
 */
const TOUCH_MS = 1000;

/** One remote endpoint of a datagram socket, in the socket shape core uses. */
export class PeerSocket implements TransportSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  destroyed = false;
  readonly writableLength = 0;
  /** Nothing is held: each write is a datagram handed to the kernel. */
  readonly writableHighWaterMark = 0;
  readonly writableNeedDrain = false;
  /** When the peer last moved to the recent end of its listener's table (ms, Date.now()). */
  touched = 0;
  private paused = false;
  private sink: SocketSink | null = null;

  constructor(private readonly udp: dgram.Socket, remote: { address: string; port: number; family: string },
    private readonly connected: boolean, private readonly maxDatagram: number, private readonly onGone: (p: PeerSocket) => void) {
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.remoteFamily = remote.family;
  }

  get localAddress(): string {
    return this.udp.address().address;
  }
  get localPort(): number {
    return this.udp.address().port;
  }

  bind(sink: SocketSink): void {
    this.sink = sink;
  }
  /** Never owed: nothing is held. */
  watchDrain(): void {}
  afterRound(run: () => void): void {
    setImmediate(run);
  }

  /** One datagram in. */
  deliver(datagram: Buffer): void {
    if (!this.destroyed && !this.paused) this.sink?.handleData(datagram);
  }

  /** An error of the socket, or of a send to this peer. */
  fault(err: Error): void {
    this.sink?.handleError(err);
  }

  /** One datagram out. A payload over the bound is refused with an error, not truncated. */
  write(bytes: Buffer): boolean {
    if (this.destroyed) return false;
    if (bytes.length > this.maxDatagram) {
      this.fault(new SwitchboardError('ERR_DATAGRAM_TOO_LARGE', `datagram of ${bytes.length} bytes is over the limit of ${this.maxDatagram}`));
      return false;
    }
    const cb = (err: Error | null): void => {
      if (err) this.fault(err);
    };
    if (this.connected) this.udp.send(bytes, cb);
    else this.udp.send(bytes, this.remotePort, this.remoteAddress, cb);
    return true;
  }

  /** Each buffer is a datagram of its own (core writes datagrams one by one and never calls this). */
  writev(chunks: readonly Buffer[]): boolean {
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = this.write(chunks[i]!) && ok;
    return ok;
  }

  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
  isPaused(): boolean { return this.paused; }

  /** UDP has nothing to flush or to tell the peer: ending is forgetting. */
  end(): void {
    this.destroy();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.onGone(this);
    queueMicrotask(() => this.sink?.handleClose());
  }

  /**
   * Forgotten to make room for a new endpoint. The peer did nothing wrong and UDP has nothing to
   * tell it, so its connection ends as if the peer had ended it (code 1000), and synchronously:
   * its place must be free before the newcomer is counted against the limit.
   */
  evict(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.onGone(this);
    this.sink?.handleEnd();
    this.sink?.handleClose();
  }
}

/**
 * Binds a UDP socket for a udp:// address; `onPeer` gets a PeerSocket for each new remote endpoint
 * and the size of its first datagram (what it sent before anyone knows who it is), and says
 * whether the peer was admitted.
 */
export async function bindUdp(address: Address, options: { maxDatagram: number; maxPeers: number },
  onPeer: (peer: PeerSocket, firstDatagram: number) => boolean): Promise<{ socket: dgram.Socket; close: () => Promise<void> }> {
  const type = isIPv6(address.host) ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({ type, reuseAddr: false });
  // In recency order (a Map iterates in insertion order): the first entry is the quietest peer.
  const peers = new Map<string, PeerSocket>();
  const forget = (p: PeerSocket): void => {
    const key = `${p.remoteAddress}|${p.remotePort}`;
    if (peers.get(key) === p) peers.delete(key);
  };
  socket.on('message', (msg, rinfo) => {
    if (msg.length > options.maxDatagram) return; // over the bound: dropped, as a full socket buffer would
    const key = `${rinfo.address}|${rinfo.port}`;
    const now = Date.now();
    let peer = peers.get(key);
    if (peer) {
      if (now - peer.touched >= TOUCH_MS) {
        peers.delete(key);
        peers.set(key, peer);
        peer.touched = now;
      }
    } else {
      if (peers.size >= options.maxPeers && peers.size > 0) peers.values().next().value!.evict();
      peer = new PeerSocket(socket, rinfo, false, options.maxDatagram, forget);
      peer.touched = now;
      peers.set(key, peer);
      if (!onPeer(peer, msg.length)) return;
    }
    peer.deliver(msg);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(address.port, address.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {}); // per-send errors go to the peer; ICMP errors must not crash the server
  return {
    socket,
    close: () => new Promise<void>((resolve) => {
      for (const p of [...peers.values()]) p.destroy();
      socket.close(() => resolve());
    }),
  };
}

/** A connected UDP socket to one server, as a PeerSocket. */
export async function connectUdp(address: Address, maxDatagram: number): Promise<PeerSocket> {
  const type = isIPv6(address.host) ? 'udp6' : 'udp4';
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(address.port, address.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const remote = socket.remoteAddress();
  const peer = new PeerSocket(socket, { address: remote.address, port: remote.port, family: remote.family }, true, maxDatagram,
    () => socket.close());
  // A refused datagram (ICMP port unreachable) shows up as an error on a connected socket,
  // worded by Node as "recvmsg ECONNREFUSED": say what it means.
  socket.on('error', (err: NodeJS.ErrnoException) => {
    peer.fault(err.code === 'ECONNREFUSED'
      ? new SwitchboardError('ECONNREFUSED', `${address.url} refused the datagram (ICMP port unreachable): nothing listens on that port`, { cause: err })
      : err);
    peer.destroy();
  });
  socket.on('message', (msg) => peer.deliver(msg));
  return peer;
}
