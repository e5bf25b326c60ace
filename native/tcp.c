/*
 * switchboard's native TCP transport: accept, read and write on libuv directly, with Node-API
 * as the only interface to JavaScript.
 *
 * Why it exists: a net.Socket costs ~3.7 KiB of memory and ~1 µs of stream machinery per
 * message before any protocol work. Here a connection is one malloc'd struct (a uv_tcp_t and
 * a few fields), and reads are batched: every read of one event-loop round is copied into one
 * shared slab and described by a record in one shared Int32Array, and JavaScript is called
 * once per round (from a uv_check handle, right after the poll phase) to handle them all.
 *
 * Records are four int32s: [type, slot, a, b]. A slot is a connection's small-integer id; it
 * is reused only after that connection's CLOSE record has been delivered.
 *   ACCEPT slot listener -   DATA slot offset length   EOF slot - -
 *   ERROR slot uvcode -      DRAIN slot - -            CLOSE slot - -
 *
 * Bounds: a record is written only where the event buffer has room (push() delivers a batch as
 * soon as it fills, and records nothing while a full one cannot be delivered), and a read only
 * gets the slab's free tail (at most MAX_READ; a round is delivered early once less than that is
 * left), so neither shared buffer is ever written past.
 *
 * Teardown: every handle (the check handle, listeners, connections) is counted while it is open
 * or closing. When the environment goes away (a worker thread ends, or the main thread exits)
 * cleanup() closes them all, and the state is freed when the last close callback has run, so
 * a worker leaves no handle, socket or allocation behind.
 *
 * Writes: write() tries the syscall at once (uv_try_write); what the kernel does not take is
 * copied and queued with uv_write, and write() returns the bytes still queued. DRAIN is
 * recorded when that queue empties.
 */
#define NAPI_VERSION 8
#ifdef __linux__
#define _GNU_SOURCE /* accept4 */
#include <unistd.h>
#endif
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "mask.h"

/* The record layout and event codes: transport/native.ts checks its own copy against the
   addon's `layout` export at init, so the two cannot drift apart unnoticed. */
enum { EV_ACCEPT = 1, EV_DATA = 2, EV_EOF = 3, EV_ERROR = 4, EV_DRAIN = 5, EV_CLOSE = 6 };
enum { RECORD_INTS = 4 };
/* DEAD: the environment is gone (call nothing). FULL: the event buffer is full and the batch could
   not be handed to JavaScript (its environment is stopping): a record would have nowhere to go. */
enum { MUTE_DEAD = 1, MUTE_FULL = 2 };
enum { F_CLOSING = 1, F_EOF = 2, F_SHUT = 4, F_SHUT_SENT = 8, F_READING = 16 };

/* Each read gets at most this much of the slab; a round is dispatched early when less is left. */
#define MAX_READ (64 * 1024)

typedef struct state state_t;

typedef struct {
  uv_tcp_t tcp; /* first: a uv handle pointer is a conn pointer */
  state_t *st;
  uint32_t slot;
  uint32_t flags;
  size_t pending; /* bytes queued in uv_write requests */
} conn_t;

typedef struct {
  uv_tcp_t tcp;
  state_t *st;
  int32_t id;
} listener_t;

typedef struct {
  uv_write_t req;
  size_t len;
  char data[];
} write_req_t;

struct state {
  napi_env env;
  uv_loop_t *loop;
  uv_check_t check;
  napi_ref dispatch_ref;
  napi_ref slab_ref;
  napi_ref events_ref;
  napi_async_context actx;
  char *slab;
  size_t slab_size;
  size_t slab_used;
  int32_t *events;
  uint32_t ev_cap; /* records */
  uint32_t ev_count;
  int dispatching;
  int mute; /* MUTE_* bits: while any is set push() records nothing */
  conn_t **conns;
  uint32_t conns_cap;
  uint32_t *free_slots;
  uint32_t nfree;
  uint32_t next_slot;
  listener_t **listeners;
  uint32_t listeners_cap;
  uint32_t handles; /* uv handles open or closing: the state outlives them all */
  napi_async_cleanup_hook_handle cleanup_hook; /* set while the environment's teardown waits for us */
};

/* ---- Node-API statuses ---- */

/* A failed Node-API call in a function JavaScript called: throw (unless an exception is already
   pending, which then propagates) and return NULL, which JavaScript sees as undefined. */
static void napi_failed(napi_env env, const char *call) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info); /* first: any other call resets it */
  const char *why = info != NULL && info->error_message != NULL ? info->error_message : "failed";
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  char msg[256];
  snprintf(msg, sizeof msg, "switchboard native addon: %s: %s", call, why);
  napi_throw_error(env, "ERR_SWITCHBOARD_NAPI", msg);
}

/* Every Node-API call whose status matters goes through this (in functions returning a pointer). */
#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      napi_failed(env, #call);                                                                 \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

/* ---- calling JavaScript ---- */

static void dispatch(state_t *st) {
  if (st->ev_count == 0 || st->dispatching || (st->mute & MUTE_DEAD)) return;
  napi_env env = st->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  st->dispatching = 1;
  napi_value fn, recv, argv[1], result;
  /* make_callback, not call_function: it runs the nextTick and microtask queues afterwards,
     as Node does after its own I/O callbacks. If JavaScript cannot be called, the batch is lost
     either way: it is emptied all the same, so the buffers' bounds hold. */
  uint32_t n = st->ev_count;
  napi_status s = napi_get_reference_value(env, st->dispatch_ref, &fn);
  if (s == napi_ok) s = napi_get_global(env, &recv);
  if (s == napi_ok) s = napi_create_uint32(env, n, &argv[0]);
  if (s == napi_ok) s = napi_make_callback(env, st->actx, recv, fn, 1, argv, &result);
  /* Records made while JavaScript ran (only unlisten() makes any: the accepts of a closing
     listener's queue, which use no slab) go first in the next batch. */
  uint32_t extra = st->ev_count > n ? st->ev_count - n : 0;
  if (extra > 0) memmove(st->events, st->events + RECORD_INTS * n, (size_t)extra * RECORD_INTS * sizeof(int32_t));
  st->ev_count = extra;
  st->slab_used = 0;
  st->mute &= ~MUTE_FULL;
  st->dispatching = 0;
  if (s == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

/* The buffer always has room here: a full one is delivered at once, and if it cannot be (no path
   records while JavaScript runs but unlisten(), which leaves room; so only when the environment
   is stopping) FULL mutes push() until a dispatch empties it. Nobody would read such a
   record: it is dropped rather than written past the buffer. The check costs nothing per record:
   `mute` is the one flag push() tests anyway. */
static void push(state_t *st, int32_t type, uint32_t slot, int32_t a, int32_t b) {
  if (st->mute) return;
  int32_t *r = st->events + RECORD_INTS * st->ev_count;
  r[0] = type;
  r[1] = (int32_t)slot;
  r[2] = a;
  r[3] = b;
  if (++st->ev_count == st->ev_cap) {
    dispatch(st);
    if (st->ev_count == st->ev_cap) st->mute |= MUTE_FULL;
  }
}

static void on_check(uv_check_t *h) {
  dispatch((state_t *)h->data);
}

/* ---- handles and teardown ---- */

static void state_free(state_t *st) {
  /* Tells Node that teardown may go on: it unloads this library afterwards, so no callback of
     ours may still be due on the loop. */
  if (st->cleanup_hook != NULL) napi_remove_async_cleanup_hook(st->cleanup_hook);
  free(st->conns);
  free(st->free_slots);
  free(st->listeners);
  free(st);
}

/* A handle's close callback has run. After cleanup() the last one frees the state. */
static void handle_gone(state_t *st) {
  if (--st->handles == 0 && (st->mute & MUTE_DEAD)) state_free(st);
}

/* Close callback of a handle that is only memory to free (listeners, connections never slotted). */
static void on_closed_free(uv_handle_t *h) {
  state_t *st = h->data;
  free(h);
  handle_gone(st);
}

static void on_check_closed(uv_handle_t *h) {
  handle_gone(h->data);
}

/* ---- connections ---- */

static conn_t *conn_of(state_t *st, napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  CHECK(napi_get_cb_info(env, info, argc, argv, NULL, NULL));
  uint32_t slot;
  if (napi_get_value_uint32(env, argv[0], &slot) != napi_ok || slot >= st->conns_cap) return NULL;
  conn_t *c = st->conns[slot];
  return c != NULL && (c->flags & F_CLOSING) == 0 ? c : NULL;
}

static void on_close(uv_handle_t *h) {
  conn_t *c = (conn_t *)h;
  state_t *st = c->st;
  st->conns[c->slot] = NULL;
  st->free_slots[st->nfree++] = c->slot;
  push(st, EV_CLOSE, c->slot, 0, 0);
  free(c);
  /* Close callbacks run after the check phase: deliver now, not one loop round later. */
  dispatch(st);
  handle_gone(st);
}

static void conn_close(conn_t *c) {
  if (c->flags & F_CLOSING) return;
  c->flags |= F_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  state_t *st = ((conn_t *)h)->st;
  size_t left = st->slab_size - st->slab_used;
  buf->base = st->slab + st->slab_used;
  buf->len = left < MAX_READ ? left : MAX_READ;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s;
  state_t *st = c->st;
  if (nread > 0) {
    int32_t off = (int32_t)(buf->base - st->slab);
    int32_t *last = st->ev_count > 0 ? st->events + RECORD_INTS * (st->ev_count - 1) : NULL;
    /* Counted before push(), which may deliver the batch and so empty the slab. */
    st->slab_used += (size_t)nread;
    /* A connection read twice in a row in one round (a large message): one record. */
    if (last != NULL && last[0] == EV_DATA && last[1] == (int32_t)c->slot && last[2] + last[3] == off) {
      last[3] += (int32_t)nread;
    } else {
      push(st, EV_DATA, c->slot, off, (int32_t)nread);
    }
    if (st->slab_size - st->slab_used < MAX_READ) dispatch(st);
    return;
  }
  /* ENOBUFS: on_alloc had no slab left, which happens only when a full batch could not be
     handed to JavaScript; the bytes stay in the kernel until there is room. */
  if (nread == 0 || nread == UV_ENOBUFS) return;
  if (nread == UV_EOF) {
    c->flags |= F_EOF;
    c->flags &= ~F_READING;
    uv_read_stop(s);
    push(st, EV_EOF, c->slot, 0, 0);
    if (c->flags & F_SHUT) conn_close(c);
    return;
  }
  push(st, EV_ERROR, c->slot, (int32_t)nread, 0);
  conn_close(c);
}

static void take_connection(listener_t *l, int fd);

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return; /* EMFILE and the like: libuv has already dropped the pending peer */
  take_connection((listener_t *)server, -1);
}

/* A new connection: libuv's pending one (fd < 0), or one accept()ed here (see js_unlisten). */
static void take_connection(listener_t *l, int fd) {
  state_t *st = l->st;
  conn_t *c = calloc(1, sizeof(conn_t));
  if (c == NULL) {
    if (fd >= 0) close(fd);
    return;
  }
  c->st = st;
  if (uv_tcp_init(st->loop, &c->tcp) != 0) {
    if (fd >= 0) close(fd);
    free(c);
    return;
  }
  c->tcp.data = st;
  st->handles++;
  int r = fd < 0 ? uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) : uv_tcp_open(&c->tcp, fd);
  if (r != 0 && fd >= 0) close(fd);
  if (r != 0) {
    c->flags = F_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_closed_free);
    return;
  }
  if (st->nfree > 0) c->slot = st->free_slots[--st->nfree];
  else {
    if (st->next_slot == st->conns_cap) {
      uint32_t cap = st->conns_cap * 2;
      conn_t **conns = realloc(st->conns, cap * sizeof(conn_t *));
      uint32_t *fs = conns ? realloc(st->free_slots, cap * sizeof(uint32_t)) : NULL;
      if (conns) st->conns = conns;
      if (fs == NULL) {
        c->flags = F_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_closed_free);
        return;
      }
      st->free_slots = fs;
      memset(st->conns + st->conns_cap, 0, (cap - st->conns_cap) * sizeof(conn_t *));
      st->conns_cap = cap;
    }
    c->slot = st->next_slot++;
  }
  st->conns[c->slot] = c;
  uv_tcp_nodelay(&c->tcp, 1);
  push(st, EV_ACCEPT, c->slot, l->id, 0);
  c->flags |= F_READING;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  conn_t *c = (conn_t *)req->handle;
  c->pending -= w->len;
  free(w);
  if (c->flags & F_CLOSING) return;
  if (status < 0) {
    push(c->st, EV_ERROR, c->slot, status, 0);
    conn_close(c);
  } else if (c->pending == 0) {
    push(c->st, EV_DRAIN, c->slot, 0, 0);
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = (conn_t *)req->handle;
  free(req);
  if (c->flags & F_CLOSING) return;
  c->flags |= F_SHUT;
  if (status < 0 || (c->flags & F_EOF)) conn_close(c);
}

/* ---- functions for JavaScript ---- */

static state_t *state_of(napi_env env) {
  void *d = NULL;
  napi_get_instance_data(env, &d);
  return d;
}

static napi_value int_value(napi_env env, int64_t v) {
  napi_value r;
  CHECK(napi_create_int64(env, v, &r));
  return r;
}

static napi_value throw_bad(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return NULL;
}

/* init(dispatch, slab: Buffer, events: Int32Array) */
static napi_value js_init(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || st->dispatch_ref != NULL) return throw_bad(env, "init(dispatch, slab, events) once");
  void *slab;
  size_t slab_len;
  if (napi_get_buffer_info(env, argv[1], &slab, &slab_len) != napi_ok) return throw_bad(env, "slab must be a Buffer");
  napi_typedarray_type t;
  size_t ev_len;
  void *ev;
  if (napi_get_typedarray_info(env, argv[2], &t, &ev_len, &ev, NULL, NULL) != napi_ok || t != napi_int32_array || ev_len < 4 * RECORD_INTS) {
    return throw_bad(env, "events must be an Int32Array of 4 records or more");
  }
  /* Offsets and lengths travel as int32: the slab must be addressable by them. */
  if (slab_len < 2 * MAX_READ || slab_len > INT32_MAX) return throw_bad(env, "slab must be 128 KiB to 2 GiB");
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "switchboard.tcp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &st->actx));
  CHECK(napi_create_reference(env, argv[1], 1, &st->slab_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &st->events_ref));
  CHECK(napi_create_reference(env, argv[0], 1, &st->dispatch_ref)); /* last: it marks init done */
  st->slab = slab;
  st->slab_size = slab_len;
  st->events = ev;
  st->ev_cap = (uint32_t)(ev_len / RECORD_INTS);
  uv_check_init(st->loop, &st->check);
  st->check.data = st;
  st->handles++;
  uv_check_start(&st->check, on_check);
  uv_unref((uv_handle_t *)&st->check); /* never what keeps a process alive */
  return NULL;
}

/* listen(ip, port, backlog, ipv6Only, reusePort) -> [listenerId, boundPort] or a negative uv error code.
   reusePort: SO_REUSEPORT, so that several processes (cluster workers) listen on one port and the
   kernel spreads the connections among them. */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char ip[64];
  size_t iplen;
  uint32_t port, backlog;
  bool v6only, reuseport;
  if (argc < 5 || napi_get_value_string_utf8(env, argv[0], ip, sizeof ip, &iplen) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || napi_get_value_uint32(env, argv[2], &backlog) != napi_ok ||
      napi_get_value_bool(env, argv[3], &v6only) != napi_ok || napi_get_value_bool(env, argv[4], &reuseport) != napi_ok ||
      port > 65535) {
    return throw_bad(env, "listen(ip, port, backlog, ipv6Only, reusePort)");
  }
  /* Accepted connections record into the event buffer: there must be one. */
  if (st->dispatch_ref == NULL) return throw_bad(env, "listen() before init()");
  struct sockaddr_storage addr;
  int is6 = strchr(ip, ':') != NULL;
  int r = is6 ? uv_ip6_addr(ip, (int)port, (struct sockaddr_in6 *)&addr) : uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)&addr);
  if (r != 0) return int_value(env, r);
  listener_t *l = calloc(1, sizeof(listener_t));
  if (l == NULL) return int_value(env, UV_ENOMEM);
  l->st = st;
  /* The socket is made now (not at bind) so that SO_REUSEPORT can be set before binding. */
  r = uv_tcp_init_ex(st->loop, &l->tcp, is6 ? AF_INET6 : AF_INET);
  if (r != 0) {
    free(l);
    return int_value(env, r);
  }
  l->tcp.data = st;
  st->handles++;
  if (reuseport) {
#ifdef SO_REUSEPORT
    uv_os_fd_t fd;
    int one = 1;
    r = uv_fileno((uv_handle_t *)&l->tcp, &fd);
    if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) r = uv_translate_sys_error(errno);
#else
    r = UV_ENOTSUP;
#endif
  }
  if (r == 0) r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&addr, is6 && v6only ? UV_TCP_IPV6ONLY : 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, (int)backlog, on_connection);
  if (r != 0) {
    uv_close((uv_handle_t *)&l->tcp, on_closed_free);
    return int_value(env, r);
  }
  uint32_t id = 0;
  while (id < st->listeners_cap && st->listeners[id] != NULL) id++;
  if (id == st->listeners_cap) {
    uint32_t cap = st->listeners_cap ? st->listeners_cap * 2 : 4;
    listener_t **ls = realloc(st->listeners, cap * sizeof(listener_t *));
    if (ls == NULL) {
      uv_close((uv_handle_t *)&l->tcp, on_closed_free);
      return int_value(env, UV_ENOMEM);
    }
    memset(ls + st->listeners_cap, 0, (cap - st->listeners_cap) * sizeof(listener_t *));
    st->listeners = ls;
    st->listeners_cap = cap;
  }
  l->id = (int32_t)id;
  st->listeners[id] = l;
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen);
  int bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port);
  napi_value out, vid, vport;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_uint32(env, id, &vid));
  CHECK(napi_create_int32(env, bport, &vport));
  CHECK(napi_set_element(env, out, 0, vid));
  CHECK(napi_set_element(env, out, 1, vport));
  return out;
}

/* unlisten(listenerId): stops accepting; connections already accepted are not touched. */
static napi_value js_unlisten(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t id;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &id) != napi_ok) return throw_bad(env, "unlisten(id)");
  if (id < st->listeners_cap && st->listeners[id] != NULL) {
#ifdef __linux__
    /* Connections the kernel completed and nobody accepted yet would be reset by the close: a
       listener in a SO_REUSEPORT group does not hand its queue to the others (unless
       net.ipv4.tcp_migrate_req is set). They are taken first, and the owner decides (a draining
       server serves them and tells them to come back). Bounded: the queue is at most the backlog. */
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)&st->listeners[id]->tcp, &lfd) == 0) {
      /* Room is left in the event buffer (a full one cannot be delivered while JavaScript runs):
         what does not fit is reset by the close, as before. */
      for (int n = 0; n < 4096 && st->mute == 0 && st->ev_count + 2 < st->ev_cap; n++) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        take_connection(st->listeners[id], cfd);
      }
    }
#endif
    uv_close((uv_handle_t *)&st->listeners[id]->tcp, on_closed_free);
    st->listeners[id] = NULL;
  }
  return NULL;
}

/* A uv_buf_t of any length: uv_buf_init() takes an unsigned int, which would cut a 4 GiB buffer,
   or a queued remainder of writev() chunks past 4 GiB, to its low 32 bits (bytes silently lost). */
static uv_buf_t buf_of(void *base, size_t len) {
  uv_buf_t b;
  b.base = base;
  b.len = len;
  return b;
}

/* Writes bufs: what the kernel takes now, then the rest copied into one queued uv_write. */
static int64_t write_bufs(conn_t *c, uv_buf_t *bufs, unsigned int nbufs) {
  if (c->flags & F_SHUT_SENT) return UV_EPIPE;
  size_t total = 0, done = 0;
  for (unsigned int i = 0; i < nbufs; i++) total += bufs[i].len;
  if (c->pending == 0 && total > 0) {
    int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs); /* one write or writev syscall */
    if (r >= 0) done = (size_t)r;
    else if (r != UV_EAGAIN && r != UV_ENOSYS) return r;
  }
  if (done < total) {
    size_t rest = total - done;
    write_req_t *w = malloc(sizeof(write_req_t) + rest);
    if (w == NULL) return UV_ENOMEM;
    size_t at = 0, skip = done;
    for (unsigned int i = 0; i < nbufs; i++) {
      size_t len = bufs[i].len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      memcpy(w->data + at, bufs[i].base + skip, len - skip);
      at += len - skip;
      skip = 0;
    }
    w->len = rest;
    uv_buf_t b = buf_of(w->data, rest);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r != 0) {
      free(w);
      return r;
    }
    c->pending += rest;
  }
  return (int64_t)c->pending;
}

/* write(slot, buffer) -> bytes still queued (>= 0), or a negative uv error code */
static napi_value js_write(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c == NULL) return int_value(env, UV_EPIPE);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_bad(env, "write(slot, buffer)");
  uv_buf_t b = buf_of(data, len);
  return int_value(env, write_bufs(c, &b, 1));
}

/* writev(slot, buffers[]) -> as write(); the buffers leave in one writev where the kernel takes them */
static napi_value js_writev(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c == NULL) return int_value(env, UV_EPIPE);
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) return throw_bad(env, "writev(slot, buffers)");
  uv_buf_t stack[64];
  uv_buf_t *bufs = n <= 64 ? stack : malloc(n * sizeof(uv_buf_t));
  if (bufs == NULL) return int_value(env, UV_ENOMEM);
  int64_t r = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    void *data;
    size_t len;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok || napi_get_buffer_info(env, el, &data, &len) != napi_ok) {
      r = -1;
      break;
    }
    bufs[i] = buf_of(data, len);
  }
  if (r == 0) r = write_bufs(c, bufs, n);
  if (bufs != stack) free(bufs);
  if (r == -1) return throw_bad(env, "writev(slot, buffers)");
  return int_value(env, r);
}

/* end(slot): half-close once the queued writes are out; the handle closes when the peer has ended too. */
static napi_value js_end(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 1;
  napi_value argv[1];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c == NULL || (c->flags & F_SHUT_SENT)) return NULL;
  c->flags |= F_SHUT_SENT;
  uv_shutdown_t *req = malloc(sizeof(uv_shutdown_t));
  if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    conn_close(c);
  }
  return NULL;
}

/* close(slot): closes at once; queued writes are dropped. CLOSE follows. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 1;
  napi_value argv[1];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c != NULL) conn_close(c);
  return NULL;
}

/* pause(slot) / resume(slot): stop and restart reading (backpressure). */
static napi_value js_pause(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 1;
  napi_value argv[1];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c != NULL && (c->flags & F_READING)) {
    c->flags &= ~F_READING;
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
  return NULL;
}

static napi_value js_resume(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 1;
  napi_value argv[1];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  if (c != NULL && !(c->flags & (F_READING | F_EOF))) {
    c->flags |= F_READING;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  return NULL;
}

/* keepalive(slot, enable, delaySeconds) */
static napi_value js_keepalive(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 3;
  napi_value argv[3];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  bool on;
  uint32_t delay;
  if (c != NULL && argc >= 3 && napi_get_value_bool(env, argv[1], &on) == napi_ok && napi_get_value_uint32(env, argv[2], &delay) == napi_ok) {
    uv_tcp_keepalive(&c->tcp, on ? 1 : 0, delay > 0 ? delay : 1);
  }
  return NULL;
}

/* address(slot, peer: boolean) -> [ip, port, family] or undefined */
static napi_value js_address(napi_env env, napi_callback_info info) {
  state_t *st = state_of(env);
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_of(st, env, info, &argc, argv);
  bool peer = true;
  if (c == NULL || argc < 2 || napi_get_value_bool(env, argv[1], &peer) != napi_ok) return NULL;
  struct sockaddr_storage a;
  int alen = sizeof a;
  int r = peer ? uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&a, &alen) : uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&a, &alen);
  if (r != 0) return NULL;
  char ip[64] = "";
  int port, six = a.ss_family == AF_INET6;
  if (six) {
    uv_ip6_name((struct sockaddr_in6 *)&a, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&a, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in *)&a)->sin_port);
  }
  napi_value out, s, vport, fam;
  CHECK(napi_create_array_with_length(env, 3, &out));
  CHECK(napi_create_string_utf8(env, ip, NAPI_AUTO_LENGTH, &s));
  CHECK(napi_create_int32(env, port, &vport));
  CHECK(napi_create_string_utf8(env, six ? "IPv6" : "IPv4", NAPI_AUTO_LENGTH, &fam));
  CHECK(napi_set_element(env, out, 0, s));
  CHECK(napi_set_element(env, out, 1, vport));
  CHECK(napi_set_element(env, out, 2, fam));
  return out;
}

/* ---- module ---- */

/* The environment is going away (a worker thread ends, the main thread exits): call into it no
   more, let go of its values, and close every handle. An async cleanup hook, because closing
   takes a loop turn: Node keeps running the loop until the last close callback frees the state
   and removes the hook (a worker's loop must have no handle left when it is closed, and the
   library is unloaded once the environment is gone). The slab and event buffer are JavaScript's:
   after this nothing reads into or records in them. */
static void cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  state_t *st = arg;
  st->cleanup_hook = hook;
  st->mute |= MUTE_DEAD;
  if (st->check.data != NULL) { /* set by init() with the handle */
    uv_check_stop(&st->check);
    uv_close((uv_handle_t *)&st->check, on_check_closed);
  }
  /* Statuses unchecked: nothing is left to do about a failure while the environment goes. */
  if (st->dispatch_ref != NULL) napi_delete_reference(st->env, st->dispatch_ref);
  if (st->slab_ref != NULL) napi_delete_reference(st->env, st->slab_ref);
  if (st->events_ref != NULL) napi_delete_reference(st->env, st->events_ref);
  if (st->actx != NULL) napi_async_destroy(st->env, st->actx);
  st->dispatch_ref = st->slab_ref = st->events_ref = NULL;
  for (uint32_t i = 0; i < st->listeners_cap; i++) {
    if (st->listeners[i] != NULL) uv_close((uv_handle_t *)&st->listeners[i]->tcp, on_closed_free);
    st->listeners[i] = NULL;
  }
  for (uint32_t i = 0; i < st->next_slot; i++) {
    if (st->conns[i] != NULL) conn_close(st->conns[i]); /* queued writes are cancelled first */
  }
  if (st->handles == 0) state_free(st);
}

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* Nothing: cleanup() owns the state's end, which waits for the handles' close callbacks. */
  (void)data;
}

/* `layout`: the record layout and event codes, for transport/native.ts to check its copy against. */
static napi_value layout_value(napi_env env) {
  static const struct { const char *name; int32_t value; } fields[] = {
    { "ACCEPT", EV_ACCEPT }, { "DATA", EV_DATA }, { "EOF", EV_EOF }, { "ERROR", EV_ERROR },
    { "DRAIN", EV_DRAIN }, { "CLOSE", EV_CLOSE }, { "RECORD_INTS", RECORD_INTS }, { "MAX_READ", MAX_READ },
  };
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    CHECK(napi_create_int32(env, fields[i].value, &v));
    CHECK(napi_set_named_property(env, obj, fields[i].name, v));
  }
  return obj;
}

NAPI_MODULE_INIT() {
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  napi_value layout = layout_value(env);
  if (layout == NULL) return NULL;
  state_t *st = calloc(1, sizeof(state_t));
  if (st == NULL) {
    napi_throw_error(env, "ERR_SWITCHBOARD_NAPI", "switchboard native addon: out of memory");
    return NULL;
  }
  st->env = env;
  st->loop = loop;
  st->conns_cap = 1024;
  st->conns = calloc(st->conns_cap, sizeof(conn_t *));
  st->free_slots = malloc(st->conns_cap * sizeof(uint32_t));
  if (st->conns == NULL || st->free_slots == NULL) {
    state_free(st);
    napi_throw_error(env, "ERR_SWITCHBOARD_NAPI", "switchboard native addon: out of memory");
    return NULL;
  }
  /* The hook owns the state's end from here (it is freed at teardown even if what follows fails). */
  if (napi_set_instance_data(env, st, finalize_state, NULL) != napi_ok ||
      napi_add_async_cleanup_hook(env, cleanup, st, NULL) != napi_ok) {
    napi_failed(env, "registering the environment's cleanup");
    state_free(st);
    return NULL;
  }
  napi_property_descriptor props[] = {
    { "layout", NULL, NULL, NULL, NULL, layout, napi_enumerable, NULL },
    { "init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL },
    { "listen", NULL, js_listen, NULL, NULL, NULL, napi_default, NULL },
    { "unlisten", NULL, js_unlisten, NULL, NULL, NULL, napi_default, NULL },
    { "write", NULL, js_write, NULL, NULL, NULL, napi_default, NULL },
    { "writev", NULL, js_writev, NULL, NULL, NULL, napi_default, NULL },
    { "end", NULL, js_end, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "pause", NULL, js_pause, NULL, NULL, NULL, napi_default, NULL },
    { "resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL },
    { "keepalive", NULL, js_keepalive, NULL, NULL, NULL, napi_default, NULL },
    { "address", NULL, js_address, NULL, NULL, NULL, napi_default, NULL },
    /* Not the transport: the WebSocket XOR helper of mask.c, offered beside it (transport/mask.ts). */
    { "mask", NULL, switchboard_mask, NULL, NULL, NULL, napi_default, NULL },
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
