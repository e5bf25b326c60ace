// The README's limits snippet (accept hook, per-IP cap, rate limit), verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { Server } from 'switchboard';
const blocked = new Set(['203.0.113.7']);
const server = new Server({
  listen: ['text://0.0.0.0:5000', 'ws://0.0.0.0:8080'],
  maxConnectionsPerIp: 20,
  rateLimit: { messages: 50, bytes: 64 * 1024, per: 1000, burst: { messages: 100 } },   // policy 'pause'
  accept: (remote) => !blocked.has(remote.address),
});
server.on('refused', ({ remote, reason }) => console.log('refused', remote, reason));
