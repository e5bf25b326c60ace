/**
 * The published .d.ts files: built in memory with tsconfig.build.json (stripInternal), they hold the
 * public API and none of the internals tagged @internal, and they type-check on their own
 * (skipLibCheck off), so a user whose tsconfig checks libraries gets no errors from switchboard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import ts from 'typescript';

const ROOT = new URL('..', import.meta.url).pathname;

function buildOptions(): ts.CompilerOptions {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.build.json'), {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)),
  });
  assert.ok(config);
  return config.options;
}

test('the emitted .d.ts files leave the internals out and type-check with skipLibCheck off', { timeout: 60000 }, () => {
  const options = buildOptions();
  assert.equal(options.stripInternal, true, 'tsconfig.build.json strips @internal members');
  const outDir = join(ROOT, '.dts-check');
  const emitted = new Map<string, string>();
  const program = ts.createProgram([join(ROOT, 'src/index.ts'), join(ROOT, 'src/sockets/index.ts')], {
    ...options, outDir, declaration: true, emitDeclarationOnly: true, sourceMap: false, declarationMap: false, noEmit: false,
  });
  const result = program.emit(undefined, (file, text) => { if (file.endsWith('.d.ts')) emitted.set(file, text); });
  assert.deepEqual(result.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), []);

  const dts = (rel: string): string => {
    const text = emitted.get(join(outDir, rel));
    assert.ok(text !== undefined, `${rel} was emitted`);
    return text;
  };
  const connection = dts('src/core/connection.d.ts');
  const server = dts('src/core/server.d.ts');
  // Public: typed options, typed data, attach.
  assert.match(connection, /class Connection<Data extends object = Record<string, unknown>>/);
  assert.match(connection, /get data\(\): Data;/);
  assert.match(server, /attach\(httpServer: HttpServer, options: AttachOptions\): this;/);
  assert.match(server, /websocket\?: Readonly<WebSocketServerOptions>;/);
  assert.match(dts('src/core/client.d.ts'), /websocket\?: Readonly<WebSocketClientOptions>;/);
  for (const name of ['WebSocketServerOptions', 'WebSocketClientOptions', 'PerMessageDeflateOptions', 'VerifyClientInfo', 'ServerEvents', 'ConnectionEvents', 'AttachOptions']) {
    assert.match(dts('src/index.d.ts'), new RegExp(`\\b${name}\\b`), `index.d.ts exports ${name}`);
  }
  // Internal: not in the published declarations.
  for (const member of ['socket', 'session', 'start', 'handleData', 'handleEnd', 'handleError', 'handleClose', 'handleDrain', 'sweep', 'write',
    'flush', 'deliverInbox', 'deliverMessage', 'afterYield', 'resumeReading', 'closeForLimit', 'closeTimedOut', 'touch', 'rate',
    'onOpen', 'onMessage', 'onWrite', 'onYield', 'onEnd']) {
    assert.doesNotMatch(connection, new RegExp(`^    (readonly )?${member}[(:<?]`, 'm'), `Connection.${member} is internal`);
  }
  for (const member of ['sweeper', 'connectionOpened', 'connectionClosed', 'addSubscriber', 'removeSubscriber', 'acceptUpgrade', 'upgradeListener']) {
    assert.doesNotMatch(server, new RegExp(`^    (readonly )?${member}[(:<?]`, 'm'), `Server.${member} is internal`);
  }

  // The declarations alone, as a user's compiler sees them: no errors in them (libraries checked).
  const host = ts.createCompilerHost({ ...options, skipLibCheck: false });
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (d) => d === outDir || d.startsWith(outDir + '/') ? [...emitted.keys()].some((f) => f.startsWith(d + '/')) : directoryExists?.(d) ?? true;
  host.readFile = (f) => emitted.get(f) ?? readFile(f);
  host.fileExists = (f) => emitted.has(f) || fileExists(f);
  host.getSourceFile = (f, lang, onError) => {
    const text = emitted.get(f);
    return text !== undefined ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, onError);
  };
  const consumer = ts.createProgram([join(outDir, 'src/index.d.ts'), join(outDir, 'src/sockets/index.d.ts')], { ...options, skipLibCheck: false, noEmit: true, paths: undefined, rootDir: undefined }, host);
  const errors = [...emitted.keys()].flatMap((f) => {
    const sf = consumer.getSourceFile(f);
    if (sf === undefined) return [];
    return consumer.getSemanticDiagnostics(sf).map((d) => `${f.slice(outDir.length + 1)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  });
  assert.deepEqual(errors, []);
});
