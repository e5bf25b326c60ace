// Shared by every bench server: report the bound port, and on SIGUSR2 run a full GC
// (node --expose-gc) and print this process's memory, so the harness can measure
// memory per connection from inside the server. SIGTERM exits cleanly so that
// `node --cpu-prof` gets to write its profile.
export function ready(port, countConnections) {
  process.on('SIGUSR2', () => {
    if (typeof globalThis.gc === 'function') {
      globalThis.gc();
      globalThis.gc();
    } else globalThis.Bun?.gc(true); // the Bun reference servers
    const m = process.memoryUsage();
    const report = { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external,
      arrayBuffers: m.arrayBuffers, conns: countConnections() };
    process.stdout.write(`MEM ${JSON.stringify(report)}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write(`LISTEN ${port}\n`);
}

export function portArg() {
  return Number(process.argv[2] ?? 0);
}
