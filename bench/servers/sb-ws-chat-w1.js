// switchboard chat room in 1 worker process (plus the primary, which introduces the workers): see workers-chat.js.
import { start } from './workers-chat.js';

await start(1);
