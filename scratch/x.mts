import { Redis } from 'ioredis';
import { RedisProcess } from '/work/wt/history/test/hub-support.ts';
const r = await RedisProcess.start();
const c = new Redis(r.url);
for (let i = 0; i < 300; i++) await c.xadd('k', 'MAXLEN', '~', 10, '*', 't', 'x');
console.log(await c.multi().xrange('k', '1-1', '1-1').xinfo('STREAM', 'k').exec());
c.disconnect(); await r.stop();
