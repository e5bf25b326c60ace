/**
 * One interval per owner (a server, or all clients) checks every connection's deadlines:
 * handshake, idle, heartbeat, close. This replaces a timer per connection: a connection only
 * stores numbers, and the sweep costs a few nanoseconds per connection per tick.
 */
export interface Sweepable {
  /** Called on every tick with the current time in ms. */
  sweep(now: number): void;
}

/** Also the owner's one set of its connections (a server keeps no second set of every socket). */
export class Sweeper<T extends Sweepable = Sweepable> {
  private readonly items = new Set<T>();
  private timer: NodeJS.Timeout | null = null;
  /** Milliseconds since the epoch, refreshed each tick; cheap to read on hot paths. */
  now = Date.now();

  constructor(private readonly resolutionMs: number) {}

  get size(): number {
    return this.items.size;
  }

  /** A snapshot of the items, safe to use while items leave. */
  list(): T[] {
    return [...this.items];
  }

  add(item: T): void {
    this.items.add(item);
    if (!this.timer) {
      this.now = Date.now();
      this.timer = setInterval(() => this.tick(), this.resolutionMs);
      this.timer.unref();
    }
  }

  delete(item: T): void {
    this.items.delete(item);
    if (this.items.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    const now = (this.now = Date.now());
    for (const item of this.items) item.sweep(now);
  }
}

/** A tick fine enough for the shortest timeout in use (a quarter of it), between 10 ms and 1 s. */
export function resolutionFor(...timeoutsMs: number[]): number {
  const active = timeoutsMs.filter((t) => t > 0);
  if (active.length === 0) return 1000;
  return Math.max(10, Math.min(1000, Math.floor(Math.min(...active) / 4)));
}
