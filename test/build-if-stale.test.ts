// `npm start` builds only what is stale (scripts/build-if-stale.mjs), checked on a small fake
// checkout with chosen modification times, so no real build runs here (one takes 10-20 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const SCRIPT = join(ROOT, 'scripts/build-if-stale.mjs');

function check(root: string): { code: number | null; said: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--check', '--root', root], { encoding: 'utf8', timeout: 10000 });
  return { code: r.status, said: r.stderr };
}

/** Writes `files` under `root`, every file and folder with modification time `at` (seconds). */
function write(root: string, files: string[], at: number): void {
  for (const f of files) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), f);
  }
  for (const f of files) {
    for (let p = f; p !== '.'; p = dirname(p)) utimesSync(join(root, p), at, at);
  }
}

test('npm start runs the freshness check first, and it builds on a fresh clone', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start!, /^node scripts\/build-if-stale\.mjs && node bin\/switchboard\.js serve chat$/);
  const root = mkdtempSync(join(tmpdir(), 'sb-stale-'));
  try {
    write(root, ['src/index.ts', 'tsconfig.json', 'native/tcp.c'], Date.now() / 1000 - 100);
    const fresh = check(root);
    assert.equal(fresh.code, 1);
    assert.match(fresh.said, /TypeScript: dist\/\.build-stamp is missing/);
    assert.match(fresh.said, /native addon: build\/switchboard_tcp\.node is missing/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the freshness check: up to date after a build, stale after a source changes, a file is added, or tcp.c changes', () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-stale-'));
  const t0 = Math.floor(Date.now() / 1000) - 1000;
  try {
    write(root, ['src/index.ts', 'src/cli/main.ts', 'examples/a.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json',
      'native/tcp.c', 'scripts/build-native.mjs'], t0);
    write(root, ['dist/.build-stamp', 'build/switchboard_tcp.node'], t0 + 10);
    const built = check(root);
    assert.equal(built.code, 0, built.said);
    assert.match(built.said, /TypeScript is up to date/);
    assert.match(built.said, /native addon is up to date/);

    utimesSync(join(root, 'src/cli/main.ts'), t0 + 20, t0 + 20); // an edit
    const edited = check(root);
    assert.equal(edited.code, 1);
    assert.match(edited.said, /TypeScript: src\/cli\/main\.ts is newer than dist\/\.build-stamp/);
    assert.match(edited.said, /native addon is up to date/);

    write(root, ['dist/.build-stamp'], t0 + 30); // rebuilt
    assert.equal(check(root).code, 0);
    write(root, ['src/hubs/new.ts'], t0 + 40); // a new file (its folder changes too)
    assert.match(check(root).said, /TypeScript: src\/hubs\/new\.ts is newer than dist\/\.build-stamp/);

    write(root, ['dist/.build-stamp'], t0 + 50);
    utimesSync(join(root, 'tsconfig.build.json'), t0 + 60, t0 + 60);
    assert.match(check(root).said, /TypeScript: tsconfig\.build\.json is newer/);

    write(root, ['dist/.build-stamp'], t0 + 70);
    utimesSync(join(root, 'native/tcp.c'), t0 + 80, t0 + 80);
    const native = check(root);
    assert.equal(native.code, 1);
    assert.match(native.said, /TypeScript is up to date/);
    assert.match(native.said, /native addon: native\/tcp\.c is newer than build\/switchboard_tcp\.node/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an installed package (dist/ without sources) has nothing to build', () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-stale-'));
  try {
    write(root, ['dist/src/index.js', 'package.json'], Date.now() / 1000 - 100);
    const r = check(root);
    assert.equal(r.code, 0, r.said);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
