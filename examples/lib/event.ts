/**
 * A small stand-in for PHP's `event` extension (EventBase, Event with READ and PERSIST), built
 * on socket_select(), so that seed 004's epoll chat room ports line by line: each Event watches
 * one socket for reading and calls its callback when the socket is readable.
 */
import { socket_select, type Socket } from '../../src/sockets/index.js';

export type EventCallback = (fd: Socket, what: number, arg: unknown) => void | Promise<void>;

export class EventBase {
  readonly events = new Set<Event>();
  private stopped = false;

  /** Runs until no event is left or loopbreak() is called. */
  async loop(): Promise<boolean> {
    while (!this.stopped && this.events.size > 0) {
      const watched = [...this.events].filter((e) => e.fd.state !== 'closed');
      const read = watched.map((e) => e.fd);
      if ((await socket_select(read, null, null, null)) === false) return false;
      for (const e of watched) {
        if (!read.includes(e.fd) || !this.events.has(e)) continue;
        if (!(e.what & Event.PERSIST)) this.events.delete(e);
        await e.callback(e.fd, Event.READ, e.arg);
      }
    }
    return true;
  }

  loopbreak(): boolean {
    this.stopped = true;
    return true;
  }
}

export class Event {
  static readonly TIMEOUT = 1;
  static readonly READ = 2;
  static readonly WRITE = 4;
  static readonly SIGNAL = 8;
  static readonly PERSIST = 16;

  constructor(readonly base: EventBase, readonly fd: Socket, readonly what: number, readonly callback: EventCallback, readonly arg?: unknown) {
    if (what & Event.WRITE) throw new Error('this Event stand-in watches reading only');
  }

  add(): boolean {
    this.base.events.add(this);
    return true;
  }

  del(): boolean {
    return this.base.events.delete(this);
  }
}
