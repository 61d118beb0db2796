/* Minimal HTTP/1.1 keep-alive server on libuv for the HTTP client benchmarks (one thread, no allocation per
 * byte of body). The Python fixture (tests/fixtures/http_server.py) is too slow to measure a client against.
 *
 *   server [--port N]     listens on 127.0.0.1 (0 = a free port), prints the port on stdout's first line
 *
 * Routes (GET/HEAD; request bodies are read and dropped):
 *   /small      64 bytes
 *   /bytes/N    N bytes (at most 64 MiB); byte i is 'a' + i % 26, like the fixture server
 *   anything else: 404
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_BODY (64u << 20)

static char *pattern; /* MAX_BODY bytes, shared by every response */

typedef struct {
  uv_tcp_t tcp;
  char *buf;
  size_t len, cap;
  size_t skip; /* request body bytes still to drop */
} conn_t;

typedef struct {
  uv_write_t req;
  char head[160];
} reply_t;

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  free(c->buf);
  free(c);
}

static void close_conn(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  conn_t *c = h->data;
  if (suggested < 65536) suggested = 65536;
  if (c->cap - c->len < suggested) {
    c->cap = c->len + suggested;
    c->buf = realloc(c->buf, c->cap);
  }
  *out = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

/* Case-insensitive search for a header's value inside [head, end); returns its value or -1. */
static long header_number(const char *head, const char *end, const char *name) {
  size_t n = strlen(name);
  for (const char *p = head; p + n < end; ++p) {
    if ((p == head || p[-1] == '\n') && strncasecmp(p, name, n) == 0) return strtol(p + n, NULL, 10);
  }
  return -1;
}

static void respond(conn_t *c, const char *head, const char *end) {
  int is_head = strncmp(head, "HEAD ", 5) == 0;
  const char *path = memchr(head, ' ', (size_t)(end - head));
  size_t body = 0;
  int status = 200;
  if (path && strncmp(path + 1, "/small ", 7) == 0) {
    body = 64;
  } else if (path && strncmp(path + 1, "/bytes/", 7) == 0) {
    body = strtoul(path + 8, NULL, 10);
    if (body > MAX_BODY) body = MAX_BODY;
  } else {
    status = 404;
  }
  long content_length = header_number(head, end, "content-length:");
  if (content_length > 0) c->skip = (size_t)content_length;

  reply_t *r = malloc(sizeof *r);
  r->req.data = r;
  int n = snprintf(r->head, sizeof r->head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                   status, status == 200 ? "OK" : "Not Found", body);
  uv_buf_t bufs[2] = {uv_buf_init(r->head, (unsigned)n), uv_buf_init(pattern, (unsigned)body)};
  if (uv_write(&r->req, (uv_stream_t *)&c->tcp, bufs, is_head || body == 0 ? 1 : 2, on_written) != 0) {
    free(r);
    close_conn(c);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = s->data;
  if (nread < 0) {
    close_conn(c);
    return;
  }
  c->len += (size_t)nread;
  size_t off = 0;
  for (;;) {
    if (c->skip) {
      size_t n = c->len - off < c->skip ? c->len - off : c->skip;
      off += n;
      c->skip -= n;
      if (c->skip) break;
    }
    char *start = c->buf + off;
    size_t avail = c->len - off;
    char *end = avail >= 4 ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
    if (!end) break;
    end += 4;
    respond(c, start, end);
    off = (size_t)(end - c->buf);
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    close_conn(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
  }
  pattern = malloc(MAX_BODY);
  for (size_t i = 0; i < MAX_BODY; ++i) pattern[i] = (char)('a' + i % 26);

  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
  if (rc != 0) {
    fprintf(stderr, "server: %s\n", uv_strerror(rc));
    return 1;
  }
  int len = sizeof addr;
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  printf("%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
