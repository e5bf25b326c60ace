/** Apps on node:http, node:https, Express, Fastify and Koa, each with a GET /hello route, and clients for them. */
import http, { type Server as HttpServer } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import WebSocket from 'ws';

export interface App {
  readonly name: string;
  readonly http: HttpServer;
  readonly secure: boolean;
  /** http(s)://127.0.0.1:PORT */
  readonly base: string;
  stop(): Promise<void>;
}

export type AppMaker = (cert: { key: Buffer; cert: Buffer }) => Promise<App>;

async function listenOn(server: HttpServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function stopper(server: HttpServer): () => Promise<void> {
  return () => new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function plain(name: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/hello') res.end(`hello from ${name}`);
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  };
}

export const APPS: Record<string, AppMaker> = {
  async 'node:http'() {
    const server = http.createServer(plain('node:http'));
    const port = await listenOn(server);
    return { name: 'node:http', http: server, secure: false, base: `http://127.0.0.1:${port}`, stop: stopper(server) };
  },
  async 'node:https'(c) {
    const server = https.createServer({ key: c.key, cert: c.cert }, plain('node:https'));
    const port = await listenOn(server);
    return { name: 'node:https', http: server, secure: true, base: `https://127.0.0.1:${port}`, stop: stopper(server) };
  },
  async express() {
    const app = express();
    app.get('/hello', (_req, res) => { res.send('hello from express'); });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    return { name: 'express', http: server, secure: false, base: `http://127.0.0.1:${port}`, stop: stopper(server) };
  },
  async fastify() {
    const app = Fastify();
    app.get('/hello', async () => 'hello from fastify');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as net.AddressInfo).port;
    return { name: 'fastify', http: app.server, secure: false, base: `http://127.0.0.1:${port}`, stop: async () => { await app.close(); } };
  },
  async koa() {
    const app = new Koa();
    app.use((ctx) => {
      if (ctx.path === '/hello') ctx.body = 'hello from koa';
    });
    const server = http.createServer(app.callback());
    const port = await listenOn(server);
    return { name: 'koa', http: server, secure: false, base: `http://127.0.0.1:${port}`, stop: stopper(server) };
  },
};

/** GET over http or https (the test certificate trusted); status and body. */
export function get(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** A `ws` package client, open. */
export async function wsOpen(url: string, ca?: Buffer, options: WebSocket.ClientOptions = {}, protocols: string[] = []): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, { ca, ...options });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
  return ws;
}

/** Sends one text and waits for the next text message. */
export async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
  ws.send(text);
  return reply;
}

/** The status line a raw upgrade to `path` gets, and that the server closes the socket after it (within 5 s). */
export async function rawUpgrade(base: string, path: string): Promise<{ statusLine: string; closed: boolean }> {
  const u = new URL(base);
  const port = Number(u.port);
  const socket: net.Socket = u.protocol === 'https:'
    ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    : net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    socket.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  socket.destroy();
  return { statusLine: text.split('\r\n')[0] ?? '', closed };
}
