/**
 * The native addon's WebSocket XOR loop, offered beside the transport so that the codec stays
 * pure: core hands it to the WebSocket sessions of each listener (ListenerContext), and the
 * codec uses it for long runs where it is given. Undefined where the addon is not built or
 * SWITCHBOARD_NATIVE=0 is set; the codec's TypeScript loop does the work then.
 */
import { addon } from '../addon.js';
import type { WordXor } from '../codec/websocket/mask.js';

export const nativeXor: WordXor | undefined = addon?.mask;
