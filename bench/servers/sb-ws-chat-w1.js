// switchboard chat room in 1 worker process (plus the primary that relays): see workers-chat.js.
import { start } from './workers-chat.js';

await start(1);
