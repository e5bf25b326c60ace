/**
 * A node:net (or node:tls) socket in the shape core uses (TransportSocket). Its events reach the
 * sink through shared functions, not closures per socket: the sink is kept on the socket itself.
 */
import type { Socket } from 'node:net';
import type { SocketSink, StreamSocket } from './socket.js';

const kSink = Symbol('switchboard.sink');
type TaggedSocket = Socket & { [kSink]: SocketSink };

export class NetSocket implements StreamSocket {
  constructor(readonly socket: Socket) {}

  get destroyed(): boolean {
    return this.socket.destroyed;
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  get writableHighWaterMark(): number {
    return this.socket.writableHighWaterMark;
  }
  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  bind(sink: SocketSink): void {
    const socket = this.socket as TaggedSocket;
    socket[kSink] = sink;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  }
  watchDrain(): void {
    this.socket.on('drain', onDrain);
  }
  afterRound(run: () => void): void {
    // setImmediate, not nextTick: it runs after the poll phase, so every read of the round is in.
    setImmediate(run);
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }
  writev(chunks: readonly Buffer[]): boolean {
    const socket = this.socket;
    socket.cork();
    for (let i = 0; i < chunks.length; i++) socket.write(chunks[i]!);
    socket.uncork();
    return !socket.writableNeedDrain;
  }
  end(): void {
    this.socket.end();
  }
  destroy(): void {
    this.socket.destroy();
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  isPaused(): boolean {
    return this.socket.isPaused();
  }
  setKeepAlive(enable: boolean, initialDelay: number): void {
    this.socket.setKeepAlive(enable, initialDelay);
  }
}

function onData(this: Socket, chunk: Buffer): void {
  (this as TaggedSocket)[kSink].handleData(chunk);
}
function onEnd(this: Socket): void {
  (this as TaggedSocket)[kSink].handleEnd();
}
function onError(this: Socket, err: Error): void {
  (this as TaggedSocket)[kSink].handleError(err);
}
function onClose(this: Socket): void {
  (this as TaggedSocket)[kSink].handleClose();
}
function onDrain(this: Socket): void {
  (this as TaggedSocket)[kSink].handleDrain();
}
