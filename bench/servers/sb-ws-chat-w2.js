// switchboard chat room in 2 worker processes (plus the primary, which introduces the workers; publishes go worker to worker): see workers-chat.js.
import { start } from './workers-chat.js';

await start(2);
