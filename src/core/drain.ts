/**
 * A staggered close: the connections are closed one after another, spread evenly over `ms`, so
 * that a restart does not make every client reconnect in the same instant (a thundering herd on
 * the next server). One timer for all of them; each tick closes those due.
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
  // Ticks of one close's share of the time, but no finer than TICK_MS (several close per tick) nor coarser than 100 ms.
  const timer = setInterval(step, Math.min(100, Math.max(DRAIN_TICK_MS, ms / n)));
  step();
  return () => clearInterval(timer);
}
