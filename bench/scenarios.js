// The scenarios of issue 6. Each names its servers (plain user code in bench/servers/),
// the sockload arguments, what is measured and the target.
// kind: load (throughput from sockload), idle (memory per idle connection after a GC),
// maxconn (connections one process holds), slow (server RSS while slow readers stall).

const WS = { switchboard: 'sb-ws-echo.js', ws: 'ws-echo.js' };
const WS_CHAT = { switchboard: 'sb-ws-chat.js', ws: 'ws-chat.js' };
// Bun's WebSocket server is uWebSockets: with --bun it runs beside ws in the load scenarios, as a reference.
const WS_LOAD = { ...WS, bun: 'bun-ws-echo.js' };
const WS_CHAT_LOAD = { ...WS_CHAT, bun: 'bun-ws-chat.js' };
// Both on a node:http server of the application: switchboard's server.attach() and ws's { server } mode.
const WS_ATTACHED = { switchboard: 'sb-ws-echo-attached.js', ws: 'ws-echo-attached.js' };
const LINE = { switchboard: 'sb-line-echo.js', net: 'net-line-echo.js' };
const LINE_CHAT = { switchboard: 'sb-line-chat.js', net: 'net-line-chat.js' };

export const SCENARIOS = [
  { name: 'ws-echo-64-1', title: 'WS echo 64 B, 1 in flight, 100 conns', kind: 'load', servers: WS_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-d', '1'], unit: 'msg/s', better: 'higher', target: { ratio: 1.3 } },
  { name: 'ws-echo-64-16', title: 'WS echo 64 B, 16 in flight, 100 conns', kind: 'load', servers: WS_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-d', '16'], unit: 'msg/s', better: 'higher', target: { ratio: 3 }, quick: true },
  { name: 'ws-echo-1k-16', title: 'WS echo 1 KiB, 16 in flight, 100 conns', kind: 'load', servers: WS_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '100', '-s', '1024', '-d', '16'], unit: 'msg/s', better: 'higher', target: { ratio: 2 } },
  // 64 KiB with 1 in flight: sockload's 256 KiB send buffer cannot hold 16 such frames per connection.
  { name: 'ws-echo-64k-1', title: 'WS echo 64 KiB, 1 in flight, 100 conns', kind: 'load', servers: WS_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '100', '-s', '65536', '-d', '1'], unit: 'msg/s', better: 'higher' },
  { name: 'ws-echo-attached-64-16', title: 'WS echo 64 B, 16 in flight, 100 conns, attached to a node:http server', kind: 'load',
    servers: WS_ATTACHED, baseline: 'ws', args: ['-m', 'ws', '-c', '100', '-s', '64', '-d', '16'], unit: 'msg/s', better: 'higher' },
  { name: 'ws-chat-100x10', title: 'WS chat, 100 conns, 10 senders', kind: 'load', servers: WS_CHAT_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-b', '10', '-d', '4'], unit: 'deliveries/s', better: 'higher', target: { ratio: 2.4 }, quick: true },
  { name: 'ws-chat-1000x1', title: 'WS chat, 1000 conns, 1 sender', kind: 'load', servers: WS_CHAT_LOAD, baseline: 'ws',
    args: ['-m', 'ws', '-c', '1000', '-s', '64', '-b', '1', '-d', '16'], unit: 'deliveries/s', better: 'higher', target: { ratio: 3 } },
  // The wire protocol's cost: the same room, 90 of the 100 receivers taking it in the protocol's envelope
  // (sb-ws-chat-wire.js), beside plain messages (sb-ws-chat.js) in the same run. Ratio < 1 is the cost.
  { name: 'ws-chat-wire-100x10', title: 'WS chat, 100 conns, 10 senders, wire-protocol envelope vs plain', kind: 'load',
    servers: { switchboard: 'sb-ws-chat-wire.js', plain: 'sb-ws-chat.js' }, baseline: 'plain',
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-b', '10', '-d', '4'], unit: 'deliveries/s', better: 'higher' },
  { name: 'line-echo-16', title: 'Line echo 64 B, 16 in flight, 100 conns', kind: 'load', servers: LINE, baseline: 'net',
    args: ['-m', 'line', '-c', '100', '-s', '64', '-d', '16'], unit: 'msg/s', better: 'higher', target: { ratio: 2 }, quick: true },
  { name: 'line-chat-100x10', title: 'Line chat, 100 conns, 10 senders', kind: 'load', servers: LINE_CHAT, baseline: 'net',
    args: ['-m', 'line', '-c', '100', '-s', '64', '-b', '10', '-d', '4'], unit: 'deliveries/s', better: 'higher', target: { ratio: 1.5 } },
  // net: a bare net.Socket per connection (answers the upgrade, nothing more): the floor any Node server on net.Socket pays.
  // Chat across worker processes (runWorkers; the cluster hub: a socket mesh, each publish sent once to each other
  // worker that subscribes). The primary and the workers are all pinned to the server core like every other server:
  // on this 2-core machine the other core is the load generator's, so this shows the cost of crossing processes,
  // not a speed-up (see RESULTS.md for 2 cores).
  { name: 'ws-chat-workers-1', title: 'WS chat, 100 conns, 10 senders, 1 worker process (+ primary)', kind: 'load',
    servers: { switchboard: 'sb-ws-chat-w1.js' }, baseline: 'ws', multiProcess: true,
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-b', '10', '-d', '4'], unit: 'deliveries/s', better: 'higher' },
  { name: 'ws-chat-workers-2', title: 'WS chat, 100 conns, 10 senders, 2 worker processes (+ primary)', kind: 'load',
    servers: { switchboard: 'sb-ws-chat-w2.js' }, baseline: 'ws', multiProcess: true,
    args: ['-m', 'ws', '-c', '100', '-s', '64', '-b', '10', '-d', '4'], unit: 'deliveries/s', better: 'higher' },
  { name: 'ws-idle-10k', title: 'WS idle, 10,000 conns: memory per conn (RSS)', kind: 'idle',
    servers: { ...WS, net: 'net-ws-idle.js' }, baseline: 'ws',
    conns: 10000, quickConns: 2000, unit: 'B/conn', better: 'lower', target: { max: 4000 }, quick: true },
  { name: 'ws-slow-reader', title: 'WS chat 4 KiB with 10 slow readers: server RSS growth', kind: 'slow', servers: WS_CHAT, baseline: 'ws',
    slowReaders: 10, args: ['-m', 'ws', '-c', '100', '-s', '4096', '-b', '10', '-d', '4'], unit: 'MB', better: 'lower', target: { bounded: true }, quick: true },
  // sockload has no permessage-deflate, so a Node client (ws package) drives this one; it checks memory, not speed.
  { name: 'ws-deflate-1000', title: 'WS echo, permessage-deflate, 1000 conns, 10k msg/s: server RSS growth', kind: 'deflate',
    servers: { switchboard: 'sb-ws-echo-deflate.js', ws: 'ws-echo-deflate.js' }, baseline: 'ws', conns: 1000, secs: 60, quickSecs: 5,
    runs: 1, unit: 'MB', better: 'lower', target: { bounded: true } },
  { name: 'ws-max-conns', title: 'WS connections held by one process', kind: 'maxconn', servers: WS, baseline: 'ws',
    conns: 19900, unit: 'conns', better: 'higher', target: { min: 19000 } },
  // Beyond one process's open-file limit (20000): 2 workers, 2 sockload processes. The workers accept for
  // themselves (NODE_CLUSTER_SCHED_POLICY=none): with node's default round-robin the primary accepts every
  // connection and hands it over, and a burst of 30,000 connects got resets there (see RESULTS.md).
  { name: 'ws-max-conns-workers', title: 'WS connections held by 2 worker processes', kind: 'maxconn',
    servers: { switchboard: 'sb-ws-chat-w2.js' }, baseline: 'ws', env: { NODE_CLUSTER_SCHED_POLICY: 'none' },
    conns: 30000, clients: 2, runs: 1, unit: 'conns', better: 'higher', target: { min: 20000 } },
];
