/* C floor for the LLM streaming benchmark: what a hand-written client costs.
 *
 *   floor --port P [--streams 1000] [--tokens 200]
 *
 * Starts --streams OpenAI-style streaming completions at once against
 * http://127.0.0.1:P/v1/chat/completions on one curl multi handle driven by a
 * libuv loop (sockets on uv_poll_t, curl's timer on a uv_timer_t), frames the
 * SSE in C, and parses every event's JSON with cJSON (when built with
 * -DHAVE_CJSON; otherwise a small string scan) to pull out
 * choices[0].delta.content. Prints key=value lines:
 *   streams, tokens, elapsed_ms (all streams started -> last one done),
 *   setup_ms (all requests handed to curl, before the loop runs),
 *   tokens_per_s, ttft_median_ms / ttft_p99_ms (stream start -> first
 *   non-empty delta), cpu_ms (user + system CPU of this process), errors, json
 * Exits 1 if any stream failed, did not end with [DONE] or had a token count
 * other than --tokens.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>
#ifdef HAVE_CJSON
#include <cjson/cJSON.h>
#endif

typedef struct {
  char* p;
  size_t len, cap;
} Buf;

static void buf_append(Buf* b, const char* p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 256;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

typedef struct {
  CURL* easy;
  Buf line;       /* a line cut by a chunk boundary */
  Buf data;       /* data lines of the current event, each followed by '\n' */
  uint64_t t_first;
  int tokens;
  int done;       /* saw data: [DONE] */
} Stream;

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} Sock;

static uv_loop_t* loop;
static CURLM* multi;
static uv_timer_t timer;
static uint64_t t_start;
static int finished, errors, n_streams, want_tokens;

/* --- per-event work: pull choices[0].delta.content out of the JSON ---------- */

static int event_content_len(const char* p, size_t n) {
#ifdef HAVE_CJSON
  cJSON* root = cJSON_ParseWithLength(p, n);
  int len = -1;
  cJSON* choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  cJSON* c0 = cJSON_GetArrayItem(choices, 0);
  cJSON* delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
  cJSON* content = cJSON_GetObjectItemCaseSensitive(delta, "content");
  if (cJSON_IsString(content)) len = (int)strlen(content->valuestring);
  cJSON_Delete(root);
  return len;
#else
  static const char key[] = "\"content\":\"";
  const char* end = p + n;
  for (const char* q = p; q + sizeof key - 1 <= end; q++) {
    if (memcmp(q, key, sizeof key - 1) != 0) continue;
    int len = 0;
    for (q += sizeof key - 1; q < end && *q != '"'; q++, len++)
      if (*q == '\\') q++;
    return q < end ? len : -1;
  }
  return -1;
#endif
}

/* --- SSE framing ---------------------------------------------------------- */

static void on_event(Stream* s, const char* p, size_t n) {
  if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
    s->done = 1;
    return;
  }
  if (event_content_len(p, n) > 0) {
    if (s->tokens++ == 0) s->t_first = uv_hrtime();
  }
}

static void on_line(Stream* s, const char* p, size_t n) {
  if (n && p[n - 1] == '\r') n--;
  if (n == 0) {
    if (s->data.len) on_event(s, s->data.p, s->data.len - 1);
    s->data.len = 0;
    return;
  }
  if (n >= 5 && memcmp(p, "data:", 5) == 0) {
    p += 5;
    n -= 5;
    if (n && *p == ' ') p++, n--;
    buf_append(&s->data, p, n);
    buf_append(&s->data, "\n", 1);
  }
  /* comments, event:, id:, retry: do not matter to this client */
}

static size_t on_body(char* p, size_t size, size_t nmemb, void* userp) {
  Stream* s = userp;
  size_t n = size * nmemb, i = 0;
  while (i < n) {
    const char* nl = memchr(p + i, '\n', n - i);
    if (!nl) {
      buf_append(&s->line, p + i, n - i);
      break;
    }
    size_t len = (size_t)(nl - (p + i));
    if (s->line.len) {
      buf_append(&s->line, p + i, len);
      on_line(s, s->line.p, s->line.len);
      s->line.len = 0;
    } else {
      on_line(s, p + i, len);
    }
    i += len + 1;
  }
  return n;
}

/* --- curl multi on libuv --------------------------------------------------- */

static void check_done(void) {
  CURLMsg* msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    Stream* s;
    long status = 0;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**)&s);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    if (msg->data.result != CURLE_OK || status != 200 || !s->done || s->tokens != want_tokens) {
      if (errors++ < 5)
        fprintf(stderr, "floor: stream failed: %s, status %ld, %d tokens, done=%d\n",
                curl_easy_strerror(msg->data.result), status, s->tokens, s->done);
    }
    curl_multi_remove_handle(multi, msg->easy_handle);
    curl_easy_cleanup(msg->easy_handle);
    s->easy = NULL;
    if (++finished == n_streams) uv_close((uv_handle_t*)&timer, NULL);
  }
}

static void on_poll(uv_poll_t* h, int status, int events) {
  Sock* sock = h->data;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(multi, sock->fd, flags, &running);
  check_done();
}

static void on_timer(uv_timer_t* t) {
  int running;
  (void)t;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

static void on_sock_closed(uv_handle_t* h) { free(h->data); }

static int on_curl_socket(CURL* e, curl_socket_t fd, int action, void* userp, void* socketp) {
  Sock* sock = socketp;
  (void)e;
  (void)userp;
  if (action == CURL_POLL_REMOVE) {
    if (sock) {
      uv_poll_stop(&sock->poll);
      uv_close((uv_handle_t*)&sock->poll, on_sock_closed);
      curl_multi_assign(multi, fd, NULL);
    }
    return 0;
  }
  if (!sock) {
    sock = calloc(1, sizeof *sock);
    sock->fd = fd;
    uv_poll_init_socket(loop, &sock->poll, fd);
    sock->poll.data = sock;
    curl_multi_assign(multi, fd, sock);
  }
  int events = 0;
  if (action != CURL_POLL_OUT) events |= UV_READABLE;
  if (action != CURL_POLL_IN) events |= UV_WRITABLE;
  uv_poll_start(&sock->poll, events, on_poll);
  return 0;
}

static int on_curl_timer(CURLM* m, long timeout_ms, void* userp) {
  (void)m;
  (void)userp;
  if (uv_is_closing((uv_handle_t*)&timer)) return 0;  /* all streams done */
  if (timeout_ms < 0) uv_timer_stop(&timer);
  else uv_timer_start(&timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  int port = 0;
  n_streams = 1000;
  want_tokens = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--streams") == 0) n_streams = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--tokens") == 0) want_tokens = atoi(argv[i + 1]);
  }
  if (port <= 0 || n_streams <= 0) {
    fprintf(stderr, "usage: floor --port P [--streams N] [--tokens N]\n");
    return 2;
  }
  char url[128], body[160];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
  snprintf(body, sizeof body,
           "{\"model\":\"bench\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"tokens=%d\"}]}",
           want_tokens);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n_streams);

  struct curl_slist* headers = NULL;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Authorization: Bearer bench");
  headers = curl_slist_append(headers, "Expect:");
  Stream* streams = calloc((size_t)n_streams, sizeof *streams);

  t_start = uv_hrtime();
  for (int i = 0; i < n_streams; i++) {
    CURL* e = curl_easy_init();
    streams[i].easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &streams[i]);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &streams[i]);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(multi, e);
  }
  uint64_t setup = uv_hrtime() - t_start;
  uv_run(loop, UV_RUN_DEFAULT);
  uint64_t elapsed = uv_hrtime() - t_start;

  uint64_t* ttft = calloc((size_t)n_streams, sizeof *ttft);
  long total = 0;
  int n_ttft = 0;
  for (int i = 0; i < n_streams; i++) {
    total += streams[i].tokens;
    if (streams[i].tokens) ttft[n_ttft++] = streams[i].t_first - t_start;
    free(streams[i].line.p);
    free(streams[i].data.p);
  }
  qsort(ttft, (size_t)n_ttft, sizeof *ttft, cmp_u64);
  printf("streams=%d\ntokens=%ld\nelapsed_ms=%.1f\ntokens_per_s=%.0f\n", n_streams, total, elapsed / 1e6,
         total / (elapsed / 1e9));
  printf("setup_ms=%.1f\n", setup / 1e6);
  printf("ttft_median_ms=%.1f\nttft_p99_ms=%.1f\n", n_ttft ? ttft[n_ttft / 2] / 1e6 : -1.0,
         n_ttft ? ttft[(n_ttft * 99) / 100 < n_ttft ? (n_ttft * 99) / 100 : n_ttft - 1] / 1e6 : -1.0);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cpu_ms=%.0f\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                              (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
#ifdef HAVE_CJSON
  printf("errors=%d\njson=cjson\n", errors);
#else
  printf("errors=%d\njson=scan\n", errors);
#endif
  free(ttft);
  free(streams);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);   /* closes cached connections: their uv_poll_t close now */
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  curl_global_cleanup();
  return errors ? 1 : 0;
}
