/**
 * The second process of hub-redis.test.ts: relays every message on 'in' to 'out' through its own
 * redis hub, counts anything that comes back to it on 'out' (an echo), and on 'DONE' prints its
 * tally and exits.
 */
import { RedisHub } from '../src/hubs/redis.js';

const hub = new RedisHub(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { prefix: process.env.HUB_PREFIX ?? 'switchboard:' });
let received = 0;
let echoes = 0;
hub.setListener((topic, data) => {
  if (topic === 'out') {
    echoes++;
  } else if (data === 'DONE') {
    // An echo of our relays would travel back through redis: finish() waits for a round trip first.
    void finish();
  } else {
    received++;
    hub.publish('out', data);
  }
});
hub.subscribe('in');
hub.subscribe('out');
await hub.ready();
console.log('READY');

async function finish(): Promise<void> {
  // A marker on a private topic: once it comes back from redis via another hub, all earlier
  // publishes of ours have been through redis too, so any echo of them would have arrived.
  const probe = new RedisHub(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { prefix: process.env.HUB_PREFIX ?? 'switchboard:' });
  let seen = false;
  probe.setListener(() => (seen = true));
  probe.subscribe('peer-sync');
  await probe.ready();
  hub.publish('peer-sync', 'x');
  const deadline = Date.now() + 3000;
  while (!seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  console.log(`RESULT ${JSON.stringify({ received, echoes })}`);
  await Promise.all([probe.close(), hub.close()]);
}
