// Every line of the README works as written: its TypeScript snippets are type-checked verbatim
// (test/types/readme-*.ts, part of `npm run typecheck`), the socket_* snippet runs against the
// reverse server, and what it links to is in the published package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { reverseServer } from '../src/apps/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const TYPES = join(ROOT, 'test/types');

function snippets(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('every TypeScript snippet of the README is held verbatim by a type test that `npm run typecheck` checks', () => {
  const files = readdirSync(TYPES).filter((f) => /^readme-.*\.ts$/.test(f)).map((f) => join(TYPES, f));
  const held = files.map((f) => readFileSync(f, 'utf8'));
  const blocks = snippets(README);
  assert.ok(blocks.length >= 3, 'the README has its snippets');
  for (const block of blocks) {
    assert.ok(held.some((text) => text.includes(block)), `no file in test/types/ holds this README snippet verbatim:\n${block}`);
  }
  // The type check of `npm test` (tsc -p tsconfig.json --noEmit) covers these files.
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)),
  });
  assert.ok(config);
  assert.equal(config.options.strict, true);
  for (const f of [...files, join(TYPES, 'sockets-strict.ts')]) assert.ok(config.fileNames.includes(f), `${f} is not type-checked`);
});

test('the README\'s switchboard/sockets snippet runs against the reverse server and prints its reply', { timeout: 30000 }, async () => {
  const block = snippets(README).find((b) => b.includes("from 'switchboard/sockets'"));
  assert.ok(block);
  const server = await reverseServer({ listen: 'tcp://127.0.0.1:0', log: () => {} });
  const dir = mkdtempSync(join(tmpdir(), 'sb-readme-'));
  try {
    // The same program, pointed at this checkout's sources and at the server's ephemeral port.
    const port = /:(\d+)$/.exec(server.addresses[0]!)![1]!;
    assert.match(block, /'127\.0\.0\.1', 5353\)/);
    const program = block
      .replace("'switchboard/sockets'", `'${pathToFileURL(join(ROOT, 'src/sockets/index.ts')).href}'`)
      .replace("'127.0.0.1', 5353)", `'127.0.0.1', ${port})`);
    const file = join(dir, 'snippet.mts');
    writeFileSync(file, program);
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    assert.equal(code, 0, err);
    // The server's reply ends in "\n" and console.log adds one.
    assert.equal(out, 'Reply From Server  :revreS olleH\n\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.close();
  }
});

/** Relative links of a markdown file ([text](path), not http:// or #anchors), as paths from the package root. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const base = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!.split('#')[0]!)
    .filter((href) => href !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(href))
    .map((href) => join(base, href).replace(/\/$/, ''));
}

test('the published package has the LICENSE and every file the README links to (and what those link to)', { timeout: 30000 }, async () => {
  // --ignore-scripts: the file list is decided by package.json "files", not by building.
  const child = spawn('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  const packed = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  assert.ok(packed.has('LICENSE'), 'LICENSE is not in the package');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} switchboard contributors\n/);
  assert.equal((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string }).license, 'MIT');
  const links = relativeLinks('README.md');
  assert.ok(links.length >= 3, 'the README links to its companions');
  const second = links.filter((l) => l.endsWith('.md')).flatMap(relativeLinks);
  for (const link of [...links, ...second]) assert.ok(packed.has(link), `README links to ${link}, which the package does not hold`);
});
