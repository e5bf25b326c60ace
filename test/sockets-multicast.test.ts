// Multicast and IP-level options on UDP sockets, over loopback: a group joined with
// MCAST_JOIN_GROUP on 'lo' receives what a sender with IP_MULTICAST_IF / _LOOP / _TTL sends to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import {
  AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP, IPV6_RECVPKTINFO,
  IPV6_UNICAST_HOPS, IPV6_V6ONLY, IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL, MCAST_BLOCK_SOURCE, MCAST_JOIN_GROUP,
  MCAST_LEAVE_GROUP, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT, type Socket, socket_bind, socket_close,
  socket_connect, socket_create, socket_listen, socket_select, socket_write,
  socket_get_option, socket_getsockname, socket_last_error, socket_recvfrom, socket_sendto, socket_set_nonblock,
  socket_set_option,
} from '../src/sockets/index.js';

const T = { timeout: 10000 };
const GROUP = '239.255.42.99';

function udp(domain = AF_INET): Socket {
  const s = socket_create(domain, SOCK_DGRAM, 0);
  assert.ok(s);
  return s;
}

async function receive(s: Socket, ms = 3000): Promise<{ data: string | null; from: string } | null> {
  const buf = { data: null as string | null };
  const from = { address: '', port: 0 };
  socket_set_option(s, SOL_SOCKET, 20, { sec: Math.floor(ms / 1000), usec: (ms % 1000) * 1000 }); // SO_RCVTIMEO
  const n = await socket_recvfrom(s, buf, 1500, 0, from);
  return n === false ? null : { data: buf.data, from: from.address };
}

test('IPv4: a group joined on lo receives a datagram; after MCAST_LEAVE_GROUP it no longer does', T, async () => {
  const rx = udp();
  assert.ok(socket_set_option(rx, SOL_SOCKET, SO_REUSEADDR, 1));
  // Joined before bind: kept and applied at bind, as the kernel would have it.
  assert.ok(socket_set_option(rx, IPPROTO_IP, MCAST_JOIN_GROUP, { group: GROUP, interface: 'lo' }));
  assert.ok(await socket_bind(rx, '0.0.0.0', 0));
  const name = { address: '', port: 0 };
  socket_getsockname(rx, name);

  const tx = udp();
  assert.ok(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_IF, 'lo'));
  assert.ok(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 1));
  assert.ok(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_TTL, 1));
  assert.ok(await socket_bind(tx, '127.0.0.1', 0));
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_TTL), 1);
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_LOOP), 1);
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_IF), 1); // lo's index

  assert.equal(await socket_sendto(tx, 'to the group', 12, 0, GROUP, name.port), 12);
  const got = await receive(rx);
  assert.deepEqual(got, { data: 'to the group', from: '127.0.0.1' });

  // Joining twice: 98, as Linux; leaving: no more datagrams (a unicast one still arrives, so the socket is alive).
  assert.equal(socket_set_option(rx, IPPROTO_IP, MCAST_JOIN_GROUP, { group: GROUP, interface: 'lo' }), false);
  assert.equal(socket_last_error(rx), 98);
  assert.ok(socket_set_option(rx, IPPROTO_IP, MCAST_LEAVE_GROUP, { group: GROUP, interface: 'lo' }));
  assert.equal(await socket_sendto(tx, 'not for you', 11, 0, GROUP, name.port), 11);
  assert.equal(await socket_sendto(tx, 'unicast', 7, 0, '127.0.0.1', name.port), 7);
  assert.deepEqual(await receive(rx), { data: 'unicast', from: '127.0.0.1' });
  socket_set_nonblock(rx);
  assert.equal(await receive(rx), null);
  assert.equal(socket_last_error(rx), 11);
  socket_close(rx);
  socket_close(tx);
});

// (IP_MULTICAST_LOOP 0 cannot be observed on lo: a datagram sent out through lo comes back in
// through lo, which is not the loopback copy the option turns off.)
test('options set before bind read back at once and reach the socket at bind', T, async () => {
  const tx = udp();
  assert.ok(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 0));
  assert.ok(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_TTL, 5));
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_LOOP), 0);
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_TTL), 5);
  assert.equal(socket_set_option(tx, IPPROTO_IP, IP_MULTICAST_TTL, 256), false);
  assert.equal(socket_last_error(tx), 22);
  assert.ok(await socket_bind(tx, '127.0.0.1', 0));
  assert.equal(socket_get_option(tx, IPPROTO_IP, IP_MULTICAST_TTL), 5);
  socket_close(tx);
});

test('IPv6: ff02:: on ::1\'s interface, where the kernel routes it', T, async (t) => {
  // Linux's lo has no IPv6 multicast route unless configured: find out with Node's own dgram first.
  const probe = dgram.createSocket('udp6');
  await new Promise<void>((r) => probe.bind(0, '::', r));
  const routed = await new Promise<boolean>((resolve) => {
    try {
      probe.setMulticastInterface('::%lo');
    } catch {
      resolve(false);
      return;
    }
    probe.send('x', 9, 'ff02::1:2345', (err) => resolve(!err));
  });
  probe.close();
  const rx = udp(AF_INET6);
  assert.ok(socket_set_option(rx, IPPROTO_IPV6, IPV6_V6ONLY, 1));
  assert.ok(await socket_bind(rx, '::', 0));
  assert.equal(socket_get_option(rx, IPPROTO_IPV6, IPV6_V6ONLY), 1);
  assert.equal(socket_set_option(rx, IPPROTO_IPV6, IPV6_V6ONLY, 0), false); // only before bind
  assert.equal(socket_last_error(rx), 22);
  assert.ok(socket_set_option(rx, IPPROTO_IPV6, MCAST_JOIN_GROUP, { group: 'ff02::1:2345', interface: 'lo' }));
  const tx = udp(AF_INET6);
  assert.ok(await socket_bind(tx, '::1', 0));
  assert.ok(socket_set_option(tx, IPPROTO_IPV6, IPV6_MULTICAST_IF, 'lo'));
  assert.ok(socket_set_option(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1));
  assert.ok(socket_set_option(tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1));
  assert.ok(socket_set_option(tx, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7));
  assert.equal(socket_get_option(tx, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 7);
  const name = { address: '', port: 0 };
  socket_getsockname(rx, name);
  if (!routed) {
    assert.equal(await socket_sendto(tx, 'six', 3, 0, 'ff02::1:2345', name.port), false);
    assert.equal(socket_last_error(tx), 101);
    t.skip('this kernel has no IPv6 multicast route on lo (sendto gives 101 "Network is unreachable")');
  } else {
    assert.equal(await socket_sendto(tx, 'six', 3, 0, 'ff02::1:2345', name.port), 3);
    const got = await receive(rx);
    assert.equal(got?.data, 'six');
  }
  socket_close(rx);
  socket_close(tx);
});

test('what cannot be done fails with the errno Linux gives a system without it', T, async () => {
  const s = udp();
  assert.equal(socket_set_option(s, IPPROTO_IP, MCAST_JOIN_GROUP, { group: GROUP, interface: 'nosuch0' }), false);
  assert.equal(socket_last_error(s), 19);
  assert.equal(socket_set_option(s, IPPROTO_IP, MCAST_JOIN_GROUP, { group: 'ff02::1', interface: 0 }), false);
  assert.equal(socket_last_error(s), 22);
  assert.equal(socket_set_option(s, IPPROTO_IP, MCAST_BLOCK_SOURCE, { group: GROUP, source: '127.0.0.2' }), false);
  assert.equal(socket_last_error(s), 92);
  assert.equal(socket_set_option(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 3), false); // an AF_INET socket
  assert.equal(socket_last_error(s), 92);
  assert.equal(socket_set_option(s, IPPROTO_IP, MCAST_LEAVE_GROUP, { group: GROUP }), false);
  assert.equal(socket_last_error(s), 99);
  const six = udp(AF_INET6);
  assert.equal(socket_set_option(six, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1), false);
  assert.equal(socket_last_error(six), 92);
  socket_close(s);
  socket_close(six);
});

test('SO_REUSEPORT: two UDP sockets and two TCP listeners share a port; one without it gets 98', { timeout: 10000, skip: process.env.SWITCHBOARD_SOCKETS_NATIVE === '0' ? 'needs the sockets addon' : false }, async () => {
  const a = udp();
  const b = udp();
  assert.ok(socket_set_option(a, SOL_SOCKET, SO_REUSEPORT, 1));
  assert.ok(socket_set_option(b, SOL_SOCKET, SO_REUSEPORT, 1));
  assert.equal(socket_get_option(a, SOL_SOCKET, SO_REUSEPORT), 1);
  assert.ok(await socket_bind(a, '127.0.0.1', 0));
  const name = { address: '', port: 0 };
  socket_getsockname(a, name);
  assert.ok(await socket_bind(b, '127.0.0.1', name.port));
  const c = udp();
  assert.equal(await socket_bind(c, '127.0.0.1', name.port), false);
  assert.equal(socket_last_error(c), 98);
  // Both receive: the kernel spreads senders over them by their address, so send from several.
  const seen = new Set<Socket>();
  const senders: Socket[] = [];
  for (let i = 0; i < 32 && seen.size < 2; i++) {
    const tx = udp();
    senders.push(tx);
    const m = `n${i}`;
    assert.equal(await socket_sendto(tx, m, m.length, 0, '127.0.0.1', name.port), m.length);
    const deadline = Date.now() + 2000;
    let got = false;
    while (!got && Date.now() < deadline) {
      for (const s of [a, b]) {
        if (s.datagrams.length > 0) {
          s.datagrams.length = 0;
          s.datagramBytes = 0;
          seen.add(s);
          got = true;
        }
      }
      if (!got) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(got, 'the datagram arrived at one of them');
  }
  assert.equal(seen.size, 2);
  for (const s of [a, b, c, ...senders]) socket_close(s);

  const l1 = socket_create(AF_INET, SOCK_STREAM, 0);
  const l2 = socket_create(AF_INET, SOCK_STREAM, 0);
  assert.ok(l1 && l2);
  socket_set_option(l1, SOL_SOCKET, SO_REUSEPORT, 1);
  socket_set_option(l2, SOL_SOCKET, SO_REUSEPORT, 1);
  assert.ok(await socket_bind(l1, '127.0.0.1', 0));
  const tn = { address: '', port: 0 };
  socket_getsockname(l1, tn);
  assert.ok(await socket_bind(l2, '127.0.0.1', tn.port));
  assert.ok(await socket_listen(l1, 8));
  assert.ok(await socket_listen(l2, 8));
  const cl = socket_create(AF_INET, SOCK_STREAM, 0);
  assert.ok(cl);
  assert.ok(await socket_connect(cl, '127.0.0.1', tn.port));
  await socket_write(cl, 'which?');
  const r = await socket_select([l1, l2], null, null, 3);
  assert.equal(r, 1);
  for (const s of [cl, l1, l2]) socket_close(s);
});
