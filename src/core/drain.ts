/**
 * A staggered close: the connections are closed one after another, spread evenly over `ms`, so
 * that a restart does not make every client reconnect in the same instant (a thundering herd on
 * the next server). One timer for all of them, ticking every TICK_MS; each tick closes those due.
 */
export const DRAIN_TICK_MS = 10;

/** Closes `items` evenly over `ms` (the first at once); returns a function that stops the schedule. */
export function staggeredClose<T>(items: readonly T[], ms: number, close: (item: T) => void): () => void {
  const n = items.length;
  const start = Date.now();
  let next = 0;
  const step = (): void => {
    // Item i is due at start + i * ms / n: evenly spread, the last one a step before the end.
    const due = Math.min(n, Math.floor(((Date.now() - start) * n) / ms) + 1);
    while (next < due) close(items[next++]!);
    if (next >= n) clearInterval(timer);
  };
  const timer = setInterval(step, Math.max(1, Math.min(DRAIN_TICK_MS, ms / n)));
  step();
  return () => clearInterval(timer);
}
