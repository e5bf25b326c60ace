// The README's "Operating it" snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { Server } from 'switchboard';
const server = new Server({ listen: 'ws://0.0.0.0:8080', admin: { url: 'http://127.0.0.1:9100', token: 's3cret' } });
await server.listen();
process.on('SIGTERM', () => void server.close({ drain: 10_000 }));   // /healthz says 503 from here on
