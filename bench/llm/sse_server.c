/* Fast fake OpenAI streaming server for the LLM benchmark (libuv, one thread).
 *
 *   sse_server [--port N] [--tokens N]     (port 0, the default, picks a free one)
 *
 * Listens on 127.0.0.1 and prints the port as the first stdout line. Every
 * request (any method and path; the body is read by Content-Length and ignored)
 * gets an HTTP/1.1 200 text/event-stream response in chunked encoding: one
 * chat.completion.chunk event per token (" tokN", "tok1" first), a finish_reason
 * chunk and "data: [DONE]". Each event is its own chunk and its own write; a
 * connection writes its next event only when the previous write completed, so
 * concurrent streams interleave as they would from a real server. Keep-alive.
 *
 * The tests' Python server (tests/fixtures/llm_server.py) speaks far more of the
 * protocols but cannot push 1,000 x 200 events fast enough to measure a client.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_REQUEST (1 << 20)

static int g_tokens = 200;

typedef struct {
  uv_tcp_t tcp;
  uv_write_t wr;
  char* in;          /* request bytes not yet consumed */
  size_t in_len, in_cap;
  int streaming;     /* a response is being written: input waits */
  size_t req_len;    /* bytes of the request being answered */
  int next_token;    /* next token to send, g_tokens = finish, > g_tokens = done */
  char out[512];     /* the one write in flight */
} Conn;

static void on_close(uv_handle_t* h) {
  Conn* c = (Conn*)h->data;
  free(c->in);
  free(c);
}

static void close_conn(Conn* c) {
  if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_close);
}

static void try_request(Conn* c);

/* Formats `payload` as one SSE event inside one HTTP chunk, into c->out. */
static size_t chunk_event(Conn* c, size_t at, const char* payload) {
  char body[400];
  int n = snprintf(body, sizeof body, "data: %s\n\n", payload);
  return at + (size_t)snprintf(c->out + at, sizeof c->out - at, "%x\r\n%s\r\n", n, body);
}

static void write_next(Conn* c);

static void on_write(uv_write_t* w, int status) {
  Conn* c = (Conn*)w->data;
  if (status < 0) return close_conn(c);
  if (c->next_token <= g_tokens) return write_next(c);
  /* Response finished: drop the request, look for a pipelined/keep-alive one. */
  memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
  c->in_len -= c->req_len;
  c->streaming = 0;
  try_request(c);
}

static void write_next(Conn* c) {
  char payload[300];
  size_t len = 0;
  if (c->next_token < g_tokens) {
    snprintf(payload, sizeof payload,
             "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
             "\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%stok%d\"},"
             "\"finish_reason\":null}]}",
             c->next_token ? " " : "", c->next_token + 1);
    len = chunk_event(c, 0, payload);
  } else {
    len = chunk_event(c, 0,
                      "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                      "\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}");
    len = chunk_event(c, len, "[DONE]");
    memcpy(c->out + len, "0\r\n\r\n", 5);
    len += 5;
  }
  c->next_token++;
  uv_buf_t buf = uv_buf_init(c->out, (unsigned)len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t*)&c->tcp, &buf, 1, on_write) < 0) close_conn(c);
}

/* Starts answering if a whole request (head + Content-Length body) is buffered. */
static void try_request(Conn* c) {
  if (c->streaming) return;
  char* end = NULL;
  for (size_t i = 0; i + 3 < c->in_len; i++) {
    if (memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
      end = c->in + i + 4;
      break;
    }
  }
  if (!end) return;
  size_t head = (size_t)(end - c->in), body = 0;
  for (char* p = c->in; p < end; p++) {
    if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
      body = strtoul(p + 15, NULL, 10);
      break;
    }
  }
  if (head + body > MAX_REQUEST) return close_conn(c);
  if (c->in_len < head + body) return;
  c->req_len = head + body;
  c->streaming = 1;
  c->next_token = 0;
  static const char kHead[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\nx-request-id: req_bench\r\n\r\n";
  memcpy(c->out, kHead, sizeof kHead - 1);
  uv_buf_t buf = uv_buf_init(c->out, sizeof kHead - 1);
  c->wr.data = c;
  /* The head goes alone, so the client sees headers before the first token. */
  if (uv_write(&c->wr, (uv_stream_t*)&c->tcp, &buf, 1, on_write) < 0) close_conn(c);
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  Conn* c = (Conn*)h->data;
  (void)suggested;
  if (c->in_cap - c->in_len < 4096) {
    c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
    c->in = realloc(c->in, c->in_cap);
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  Conn* c = (Conn*)s->data;
  (void)buf;
  if (n < 0) return close_conn(c);
  c->in_len += (size_t)n;
  if (c->in_len > MAX_REQUEST) return close_conn(c);
  try_request(c);
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  Conn* c = calloc(1, sizeof *c);
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t*)&c->tcp) < 0) return close_conn(c);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

int main(int argc, char** argv) {
  int port = 0;
  /* A client that exits mid-stream must not kill the server: a write to its
     closed socket fails with EPIPE instead of raising SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--tokens") == 0) g_tokens = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: sse_server [--port N] [--tokens N]\n");
      return 2;
    }
  }
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  int rc = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t*)&server, 4096, on_connection);
  if (rc < 0) {
    fprintf(stderr, "sse_server: %s\n", uv_strerror(rc));
    return 1;
  }
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len);
  printf("%d\n", ntohs(((struct sockaddr_in*)&bound)->sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
