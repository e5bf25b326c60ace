// The README's "Reconnecting clients" snippet, verbatim: `npm run typecheck` checks it under strict
// (test/readme.test.ts checks that README.md still holds this text).
import { reconnecting } from 'switchboard';
const client = reconnecting('ws://127.0.0.1:8080/', { reconnect: { initialDelay: 500, maxDelay: 30_000, jitter: 0.5 } });
client.on('open', (conn, { reconnected }) => client.send(reconnected ? 'back again' : 'hello'));
client.on('reconnecting', ({ attempt, delay, error }) => console.log(`retry ${attempt} in ${delay} ms`, error?.message));
client.on('message', (m) => console.log(m));
client.close();   // no more retries
