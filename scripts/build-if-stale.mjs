#!/usr/bin/env node
// `npm start` runs this first: it rebuilds only what is older than its sources, so a start after
// an unchanged checkout takes a moment instead of the ~10 s of a full build, and a start after an
// edit (or on a fresh clone, where nothing is built) still runs the new code.
//
//   node scripts/build-if-stale.mjs            build what is stale (the TypeScript, the native addon)
//   node scripts/build-if-stale.mjs --check    only say what is stale: exit 0 when nothing is, 1 when something is
//   node scripts/build-if-stale.mjs --force    build everything (`npm run build`, and so `npm install`)
//   ... --root DIR                             another checkout (the tests use a small fake one)
//
// Stale means: some input (a file or a folder, so added and removed files count) is newer than
// the output. The TypeScript output is dist/.build-stamp, written after tsc succeeded; the
// addon's is build/switchboard_tcp.node (it stays optional: build-native.mjs decides).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const check = args.includes('--check');
const force = args.includes('--force');
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? path.resolve(args[rootAt + 1]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What each output is built from (tsconfig.build.json compiles src/ and examples/). */
const parts = [
  {
    name: 'TypeScript',
    inputs: ['src', 'examples', 'tsconfig.json', 'tsconfig.build.json', 'package.json'],
    output: 'dist/.build-stamp',
    build: () => {
      const tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
      execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
      writeFileSync(path.join(root, 'dist/.build-stamp'), `built by scripts/build-if-stale.mjs at ${new Date().toISOString()}\n`);
    },
  },
  {
    name: 'native addon',
    inputs: ['native', 'scripts/build-native.mjs'],
    output: 'build/switchboard_tcp.node',
    build: () => execFileSync(process.execPath, [path.join(root, 'scripts/build-native.mjs')], { stdio: 'inherit', cwd: root }),
  },
];

/** The newest input under `rel` (folders included: adding or removing a file changes its folder). */
function newest(rel, best = { mtime: 0, file: '' }) {
  const full = path.join(root, rel);
  let st;
  try {
    st = statSync(full);
  } catch {
    return best; // an input that does not exist (no examples/ in some checkout) is not newer than anything
  }
  if (st.mtimeMs >= best.mtime) best = { mtime: st.mtimeMs, file: rel }; // ties: the file, not its folder
  if (st.isDirectory()) {
    for (const entry of readdirSync(full)) best = newest(path.join(rel, entry), best);
  }
  return best;
}

/** Why this part must be rebuilt, or null when its output is up to date. */
function staleness(part) {
  // An installed package has dist/ and no sources: nothing to build.
  if (!existsSync(path.join(root, part.inputs[0]))) return null;
  const out = path.join(root, part.output);
  if (!existsSync(out)) return `${part.output} is missing`;
  const input = part.inputs.reduce((best, rel) => newest(rel, best), { mtime: 0, file: '' });
  return input.mtime > statSync(out).mtimeMs ? `${input.file} is newer than ${part.output}` : null;
}

let stale = 0;
for (const part of parts) {
  const why = force ? 'asked to build' : staleness(part);
  if (why === null) {
    console.error(`switchboard: ${part.name} is up to date`);
    continue;
  }
  stale++;
  console.error(`switchboard: ${part.name}: ${why}${check ? '' : '; building'}`);
  if (check) continue;
  try {
    part.build();
  } catch {
    console.error(`switchboard: building the ${part.name} failed (see above)`);
    process.exit(1);
  }
}
process.exitCode = check && stale > 0 ? 1 : 0;
