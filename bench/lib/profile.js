// `node bench/run.js --profile`: run switchboard's ws echo server under `node --cpu-prof`
// with the 64 B / 16 in flight load, then print where its CPU time went (self time by
// function and by file). Writes bench/out/prof/*.cpuprofile (open it in Chrome DevTools) and bench/out/profile.md.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startServer, runSockload, SERVER_CORE } from './procs.js';

export function analyze(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  // weight each sample by the time until the next one, as DevTools does
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
    total += dt;
  }
  const short = (url) => url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:');
  const fnRows = new Map();
  const fileRows = new Map();
  for (const [id, t] of self) {
    const cf = byId.get(id).callFrame;
    const file = cf.url ? short(cf.url) : '(native/vm)';
    const fn = `${cf.functionName || '(anonymous)'}${cf.url ? ` ${file}:${cf.lineNumber + 1}` : ''}`;
    fnRows.set(fn, (fnRows.get(fn) ?? 0) + t);
    const fileKey = cf.url ? file : cf.functionName || '(native)';
    fileRows.set(fileKey, (fileRows.get(fileKey) ?? 0) + t);
  }
  // percentages of busy time: (idle) is the event loop waiting, which says nothing about costs
  const busy = total - (fnRows.get('(idle)') ?? 0);
  fnRows.delete('(idle)');
  fileRows.delete('(idle)');
  const table = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, t]) => `| ${(100 * t / busy).toFixed(1)}% | \`${k}\` |`);
  return [
    `Sampled ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s; percentages are of busy time.`, '',
    '### Self time by function', '', '| self | function |', '|---|---|', ...table(fnRows), '',
    '### Self time by file', '', '| self | file |', '|---|---|', ...table(fileRows), '',
  ].join('\n');
}

export async function profileServer({ sockload, serversDir, outDir, secs, file = 'sb-ws-echo.js',
  args = ['-m', 'ws', '-c', '100', '-s', '64', '-d', '16'] }) {
  const profDir = path.join(outDir, 'prof');
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const server = await startServer(path.join(serversDir, file), { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  let r;
  try {
    r = await runSockload(sockload, ['-p', String(server.port), ...args, '-t', String(secs), '-w', '1', '-S', String(server.pid),
      '-C', String(SERVER_CORE)], { timeoutMs: (secs + 90) * 1000 });
  } finally {
    await server.stop();
  }
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(path.join(profDir, b)).mtimeMs - statSync(path.join(profDir, a)).mtimeMs);
  if (files.length === 0) throw new Error('no .cpuprofile written (did the server exit on SIGTERM?)');
  const report = `# CPU profile: ${file} under sockload ${args.join(' ')}\n\n` +
    `Throughput under the profiler: ${Math.round(r.msgs_s)} msg/s, srv_cpu ${r.srv_cpu}%. Profile: bench/out/prof/${files[0]}\n\n` +
    analyze(JSON.parse(readFileSync(path.join(profDir, files[0]), 'utf8')));
  writeFileSync(path.join(outDir, 'profile.md'), report);
  process.stdout.write(report);
}
