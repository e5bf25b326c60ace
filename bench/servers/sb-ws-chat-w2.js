// switchboard chat room in 2 worker processes (plus the primary that relays): see workers-chat.js.
import { start } from './workers-chat.js';

await start(2);
