// Benchmark harness: switchboard beside ws and plain node:net, interleaved, one command.
//   node bench/run.js                 full run (3 runs each, ~10 minutes)
//   node bench/run.js --quick         smoke run (1 run each, short, a subset; < 2 minutes)
//   node bench/run.js --only ws-echo-64-16,line-echo-16   [--runs N] [--slow-secs N (slow-reader length, default 30)]
//   node bench/run.js --profile [NAME] CPU profile of switchboard's server under load (default ws-echo-64-16)
//   node bench/run.js --list
//   add --bun to run Bun (Bun.serve, uWebSockets inside) beside ws in the WebSocket load scenarios, as a reference
// Servers run pinned to core 1, the native load generator (sockload) and this harness on core 0.
// Results: stdout, bench/out/results.md, bench/out/results.svg, bench/out/results.json.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS } from './scenarios.js';
import { buildSockload, ensureBun, pinSelf, startServer, runSockload, startIdle, startNodeLoad, sleep, SERVER_CORE, LOAD_CORE } from './lib/procs.js';
import { openSlowReaders } from './lib/slowreader.js';
import { scenarioSummary, markdown, svg, fmt } from './lib/report.js';
import { profileServer } from './lib/profile.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');
const outDir = path.join(benchDir, 'out');
const serversDir = path.join(benchDir, 'servers');

function parseArgs(argv) {
  const o = { quick: false, only: null, runs: null, profile: false, list: false, bun: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = argv[++i]?.split(',').filter(Boolean) ?? [];
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--slow-secs') o.slowSecs = Number(argv[++i]);
    else if (a === '--profile') {
      o.profile = true;
      // optional scenario name: profile that load scenario's switchboard server instead of ws echo 64 B / 16
      if (argv[i + 1] && !argv[i + 1].startsWith('--')) o.profileScenario = argv[++i];
    }
    else if (a === '--list') o.list = true;
    else if (a === '--bun') o.bun = true;
    else { console.error(`unknown option ${a} (see the top of bench/run.js)`); process.exit(2); }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const cfg = opts.quick
  ? { runs: 1, secs: 2, warm: 1, slowSecs: 6 }
  : { runs: 3, secs: 5, warm: 1, slowSecs: 30 }; // slow: 30 s, since a one-time step (~15 MB) in a 15 s run read as growth
if (opts.runs) cfg.runs = opts.runs;
if (opts.slowSecs) cfg.slowSecs = opts.slowSecs;

const log = (...a) => console.error(...a);

function flagsOf(r, sc) {
  const flags = [];
  // sockload watches one pid: with worker processes the server's CPU is spread over several.
  if (sc?.multiProcess) return flags;
  if (r.srv_cpu < 95) flags.push('client-bound');
  if (r.other_cpu > 10) flags.push('noisy');
  return flags;
}

function failed(e) {
  return { value: NaN, flags: [], notes: [String(e.message ?? e).split('\n')[0].slice(0, 300)] };
}

function dropStderr(r) {
  const { stderr: _s, ...rest } = r;
  return rest;
}

async function runLoad(sc, file, label) {
  const server = await startServer(path.join(serversDir, file), { env: sc.env, runtime: label === 'bun' ? bun : null });
  try {
    const r = await runSockload(sockload, ['-p', String(server.port), ...sc.args, '-t', String(cfg.secs), '-w', String(cfg.warm),
      '-S', String(server.pid), '-C', String(SERVER_CORE)], { timeoutMs: (cfg.secs + cfg.warm + 90) * 1000 });
    const notes = r.errors ? [`${r.errors} connection error(s): ${r.stderr.split('\n')[0]}`] : [];
    if (!(r.msgs_s > 0)) return { value: NaN, flags: [], notes: notes.length ? notes : ['no messages'], raw: dropStderr(r) };
    if (sc.multiProcess) notes.push('several processes: CPU flags not computed');
    return { value: r.msgs_s, flags: flagsOf(r, sc), notes, raw: dropStderr(r) };
  } finally {
    await server.stop();
  }
}

let sourceAddr = 10; // a fresh 127.0.0.N per idle run, so TIME_WAIT from earlier runs never exhausts ports
async function runIdleLike(sc, file, conns) {
  const server = await startServer(path.join(serversDir, file), { env: sc.env });
  const idles = [];
  try {
    const before = await server.memory();
    // sockload is one process under the same open-file limit: beyond it, several clients.
    const clients = sc.clients ?? 1;
    const each = Math.ceil(conns / clients);
    const started = [];
    for (let i = 0; i < clients; i++) {
      started.push(startIdle(sockload, ['-p', String(server.port), '-m', 'ws', '-c', String(each), '-t', '150', '-L', `127.0.0.${sourceAddr++}`],
        { timeoutMs: 180000 }).then((idle) => { idles.push(idle); return idle; }));
    }
    const held0 = (await Promise.all(started)).reduce((a, idle) => a + idle.held, 0);
    await sleep(1000); // let the server finish the last handshakes (and workers report their counts)
    const after = await server.memory();
    const held = after.conns;
    const notes = [];
    if (held0 < each * clients) notes.push(`client held ${held0}/${each * clients}: ${idles.map((i) => i.stderr().split('\n').slice(-1)[0]).join(' ')}`);
    const raw = { conns: each * clients, clientHeld: held0, serverConns: held, before, after };
    if (sc.kind === 'maxconn') return { value: held, flags: [], notes, raw };
    const perRss = (after.rss - before.rss) / held;
    const perHeap = (after.heapUsed + after.external - before.heapUsed - before.external) / held;
    raw.perConnRss = perRss;
    raw.perConnHeapExternal = perHeap;
    notes.push(`heap+external per conn ${fmt(perHeap, 'B/conn')}`);
    return { value: held > 0 ? perRss : NaN, flags: [], notes, raw };
  } finally {
    for (const idle of idles) await idle.stop();
    await server.stop();
  }
}

async function runSlow(sc, file) {
  const server = await startServer(path.join(serversDir, file));
  let slow = null;
  const samples = [];
  let timer = null;
  try {
    slow = await openSlowReaders(server.port, sc.slowReaders);
    await sleep(300);
    const rss0 = server.rssBytes();
    const t0 = Date.now();
    timer = setInterval(() => samples.push({ t: (Date.now() - t0) / 1000, rss: server.rssBytes() }), 500);
    const load = runSockload(sockload, ['-p', String(server.port), ...sc.args, '-t', String(cfg.slowSecs), '-w', String(cfg.warm),
      '-S', String(server.pid), '-C', String(SERVER_CORE)], { timeoutMs: (cfg.slowSecs + cfg.warm + 90) * 1000 });
    // ask for the connection count near the end, while the 100 loaded conns are still open
    await sleep((cfg.slowSecs + cfg.warm - 1) * 1000);
    const mem = await server.memory().catch(() => null);
    const r = await load;
    clearInterval(timer);
    timer = null;
    const loaded = Number(sc.args[sc.args.indexOf('-c') + 1]);
    const rssEnd = samples.length ? samples[samples.length - 1].rss : server.rssBytes();
    const mid = samples[Math.floor(samples.length / 2)]?.rss ?? rss0;
    const peak = Math.max(rss0, ...samples.map((s) => s.rss));
    const lateGrowthMB = (rssEnd - mid) / 1e6;
    const bounded = lateGrowthMB < 10;
    const dropped = mem ? loaded + sc.slowReaders - mem.conns : NaN;
    const notes = [`RSS ${fmt(rss0 / 1e6, 'MB')} -> peak ${fmt(peak / 1e6, 'MB')}, 2nd-half growth ${fmt(lateGrowthMB, 'MB')}, ` +
      `slow readers dropped ${Number.isFinite(dropped) ? dropped : '?'}/${sc.slowReaders}, ${fmt(r.msgs_s, 'msg/s')} deliveries/s`];
    return { value: (rssEnd - rss0) / 1e6, bounded, flags: flagsOf(r), notes,
      raw: { rss0, rssEnd, peak, lateGrowthMB, dropped, samples, load: dropStderr(r) } };
  } finally {
    if (timer) clearInterval(timer);
    if (slow) slow.close();
    await server.stop();
  }
}

async function runDeflate(sc, file) {
  const server = await startServer(path.join(serversDir, file));
  const samples = [];
  let timer = null;
  try {
    const secs = opts.quick ? sc.quickSecs : sc.secs;
    const load = await startNodeLoad(path.join(benchDir, 'deflate-load.js'), [server.port, sc.conns, secs, 100], { timeoutMs: (secs + 90) * 1000 });
    if (load.opened === 0) throw new Error(`no client connected: ${server.stderr().trim().split('\n').slice(-2).join(' | ').slice(0, 300)}`);
    const rss0 = server.rssBytes();
    const t0 = Date.now();
    timer = setInterval(() => samples.push({ t: (Date.now() - t0) / 1000, rss: server.rssBytes() }), 1000);
    const r = await load.result();
    clearInterval(timer);
    timer = null;
    const rssEnd = samples.length ? samples[samples.length - 1].rss : server.rssBytes();
    const mid = samples[Math.floor(samples.length / 2)]?.rss ?? rss0;
    const peak = Math.max(rss0, ...samples.map((s) => s.rss));
    const lateGrowthMB = (rssEnd - mid) / 1e6;
    const notes = [`${load.opened} conns, ${r.sent} sent, ${r.received} echoed in ${secs} s; RSS ${fmt(rss0 / 1e6, 'MB')} -> peak ` +
      `${fmt(peak / 1e6, 'MB')}, 2nd-half growth ${fmt(lateGrowthMB, 'MB')}`];
    if (r.received < r.sent * 0.9) notes.push('fewer than 90% of messages echoed: the server (or the Node client) fell behind');
    return { value: (rssEnd - rss0) / 1e6, bounded: lateGrowthMB < 10, flags: [], notes, raw: { rss0, rssEnd, peak, lateGrowthMB, samples, load: r } };
  } finally {
    if (timer) clearInterval(timer);
    await server.stop();
  }
}

async function runOne(sc, label) {
  const file = sc.servers[label];
  try {
    if (label === 'switchboard' && !sbAvailable) throw new Error('dist/src/index.js not built (run `npm run build`)');
    if (sc.kind === 'load') return await runLoad(sc, file, label);
    if (sc.kind === 'idle') return await runIdleLike(sc, file, opts.quick ? sc.quickConns : sc.conns);
    if (sc.kind === 'maxconn') return await runIdleLike(sc, file, sc.conns);
    if (sc.kind === 'slow') return await runSlow(sc, file);
    if (sc.kind === 'deflate') return await runDeflate(sc, file);
    throw new Error(`unknown kind ${sc.kind}`);
  } catch (e) {
    return failed(e);
  }
}

function machine() {
  let model = 'unknown CPU';
  try { model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model; } catch { /* not Linux */ }
  return `${os.cpus().length} x ${model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

if (opts.list) {
  for (const sc of SCENARIOS) console.log(`${sc.name.padEnd(18)} ${sc.title}${sc.quick ? '  [quick]' : ''}`);
  process.exit(0);
}

mkdirSync(outDir, { recursive: true });
pinSelf();
let sockload;
try {
  sockload = buildSockload(repoRoot, outDir);
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(1);
}
let bun = null;
if (opts.bun) {
  try {
    bun = ensureBun(outDir);
  } catch (e) {
    console.error(`bench: --bun: Bun could not be installed (${e.message.split('\n')[0]})`);
    process.exit(1);
  }
}
const sbAvailable = existsSync(path.join(repoRoot, 'dist/src/index.js'));
if (!sbAvailable) log('bench: dist/src/index.js is missing, switchboard servers will be reported as failed (run `npm run build`)');

if (opts.profile) {
  const sc = opts.profileScenario ? SCENARIOS.find((x) => x.name === opts.profileScenario && x.kind === 'load') : null;
  if (opts.profileScenario && !sc) { console.error(`no load scenario named ${opts.profileScenario} (see --list)`); process.exit(2); }
  await profileServer({ sockload, serversDir, outDir, secs: opts.quick ? 3 : 8, ...(sc ? { file: sc.servers.switchboard, args: sc.args } : {}) });
  process.exit(0);
}

const selected = SCENARIOS.filter((sc) => (opts.only ? opts.only.some((n) => sc.name === n || sc.name.startsWith(n)) : !opts.quick || sc.quick));
if (opts.only && selected.length === 0) { console.error(`no scenario matches ${opts.only.join(',')} (see --list)`); process.exit(2); }

const meta = { date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC', machine: machine(), node: process.version,
  runsEach: cfg.runs, quick: opts.quick, serverCore: SERVER_CORE, loadCore: LOAD_CORE,
  ...(bun !== null ? { bun: execFileSync(bun, ['--version'], { encoding: 'utf8' }).trim() } : {}) };
log(`bench: ${selected.length} scenario(s), ${cfg.runs} run(s) each, ${meta.machine}, node ${meta.node}`);
const started = Date.now();
const all = [];
for (const sc of selected) {
  const labels = Object.keys(sc.servers).filter((l) => l !== 'bun' || bun !== null);
  const runs = Object.fromEntries(labels.map((l) => [l, []]));
  const reps = sc.runs ? Math.min(sc.runs, cfg.runs) : cfg.runs;
  for (let rep = 0; rep < reps; rep++) {
    // interleave, and alternate who goes first so drift hurts neither side
    const order = rep % 2 ? [...labels].reverse() : labels;
    for (const label of order) {
      const r = await runOne(sc, label);
      runs[label].push(r);
      log(`  ${sc.name} #${rep + 1} ${label.padEnd(11)} ${fmt(r.value, sc.unit).padStart(10)}${['msg/s', 'deliveries/s'].includes(sc.unit) ? ` ${sc.unit}` : ''} ` +
        `${r.raw?.srv_cpu !== undefined ? `srv_cpu=${r.raw.srv_cpu}% other=${r.raw.other_cpu}% ` : ''}${r.flags.join(' ')} ${(r.notes ?? []).join('; ')}`);
    }
  }
  all.push({ scenario: sc, runs });
}
const summaries = all.map(({ scenario, runs }) => scenarioSummary(scenario, runs));
const md = markdown(summaries, meta) + `\nTotal time ${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`node bench/run.js ${process.argv.slice(2).join(' ')}\`\n`;
process.stdout.write(md);
writeFileSync(path.join(outDir, 'results.md'), md);
writeFileSync(path.join(outDir, 'results.svg'), svg(summaries, meta));
writeFileSync(path.join(outDir, 'results.json'), JSON.stringify({ meta, results: all }, null, 1));
log(`bench: wrote ${path.relative(repoRoot, outDir)}/results.{md,svg,json}`);
