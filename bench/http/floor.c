/* The C floor for luasync's HTTP client: libcurl multi driven by libuv, nothing else.
 *
 *   floor URL N C            N GETs of URL, at most C in flight (easy handles are reused, so are connections)
 *   floor URL N 1 --ttfb     N sequential GETs; also reports time to first body byte
 *   --round-zero             turn curl's 0 ms timeouts into 1 ms, as curl's docs/examples/multi-uv.c does
 *                            (to show what that costs)
 *   --buffer N               CURLOPT_BUFFERSIZE (curl's default is 16 KiB)
 *
 * Prints key=value lines: requests, concurrency, elapsed_ms, req_per_s, mb_per_s, cpu_us_per_req, errors and,
 * with --ttfb, ttfb_us_mean / ttfb_us_p50 / ttfb_us_p99. Exits 1 if any request failed or was not a 200.
 *
 * Shaped like multi-uv.c, with two fixes: a 0 ms timeout is kept as 0 (a 0 ms uv timer runs in the next loop
 * iteration without sleeping), and the timer's data pointer is set (curl #19462).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

typedef struct {
  CURL *easy;
  double started;
  int got_first;
} xfer_t;

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} sock_t;

static uv_loop_t *loop;
static CURLM *multi;
static uv_timer_t timer;
static long total, started_count, done_count, errors;
static double bytes;
static int ttfb_mode, round_zero;
static long buffer_size;
static double *ttfb;
static long ttfb_n;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp) {
  (void)data;
  xfer_t *x = userp;
  if (!x->got_first) {
    x->got_first = 1;
    if (ttfb_mode) ttfb[ttfb_n++] = now_s() - x->started;
  }
  bytes += (double)(size * n);
  return size * n;
}

static void start(xfer_t *x) {
  x->got_first = 0;
  x->started = now_s();
  started_count++;
  curl_multi_add_handle(multi, x->easy);
}

/* Only called from libuv callbacks, after curl_multi_socket_action has returned. */
static void check_done(void) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    long status = 0;
    xfer_t *x;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (msg->data.result != CURLE_OK || status != 200) {
      if (errors++ < 5) fprintf(stderr, "floor: %s (status %ld)\n", curl_easy_strerror(msg->data.result), status);
    }
    curl_multi_remove_handle(multi, easy);
    done_count++;
    if (started_count < total) start(x);
  }
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  sock_t *s = poll->data;
  int flags = status < 0 ? CURL_CSELECT_ERR
                         : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) | ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  int running;
  curl_multi_socket_action(multi, s->fd, flags, &running);
  check_done();
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  int running;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

static void on_sock_closed(uv_handle_t *h) { free(h->data); }

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  (void)userp;
  sock_t *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_sock_closed);
    }
    return 0;
  }
  if (!s) {
    s = malloc(sizeof *s);
    s->fd = fd;
    uv_poll_init_socket(loop, &s->poll, fd);
    s->poll.data = s;
    curl_multi_assign(multi, fd, s);
  }
  int events = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  (void)userp;
  if (timeout_ms < 0) {
    uv_timer_stop(&timer);
  } else {
    if (timeout_ms == 0 && round_zero) timeout_ms = 1;
    uv_timer_start(&timer, on_timer, (uint64_t)timeout_ms, 0);
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: floor URL N C [--ttfb] [--round-zero] [--buffer N]\n");
    return 2;
  }
  const char *url = argv[1];
  total = atol(argv[2]);
  long conc = atol(argv[3]);
  for (int i = 4; i < argc; ++i) {
    if (strcmp(argv[i], "--ttfb") == 0) ttfb_mode = 1;
    if (strcmp(argv[i], "--round-zero") == 0) round_zero = 1;
    if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) buffer_size = atol(argv[++i]);
  }
  if (conc > total) conc = total;
  ttfb = calloc((size_t)total + 1, sizeof *ttfb);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  timer.data = NULL; /* unused by on_timer, but set in exactly one place (curl #19462) */
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);

  xfer_t *xs = calloc((size_t)conc, sizeof *xs);
  for (long i = 0; i < conc; ++i) {
    CURL *e = curl_easy_init();
    xs[i].easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &xs[i]);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &xs[i]);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (buffer_size > 0) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, buffer_size);
  }

  double t0 = now_s(), c0 = cpu_s();
  for (long i = 0; i < conc; ++i) start(&xs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  double elapsed = now_s() - t0, cpu = cpu_s() - c0;

  printf("requests=%ld\nconcurrency=%ld\nelapsed_ms=%.1f\nreq_per_s=%.0f\nmb_per_s=%.1f\ncpu_us_per_req=%.1f\nerrors=%ld\n",
         done_count, conc, elapsed * 1e3, (double)done_count / elapsed, bytes / elapsed / 1e6,
         cpu / (double)done_count * 1e6, errors);
  if (ttfb_mode && ttfb_n > 0) {
    double sum = 0;
    for (long i = 0; i < ttfb_n; ++i) sum += ttfb[i];
    qsort(ttfb, (size_t)ttfb_n, sizeof *ttfb, cmp_double);
    printf("ttfb_us_mean=%.1f\nttfb_us_p50=%.1f\nttfb_us_p99=%.1f\n", sum / (double)ttfb_n * 1e6,
           ttfb[ttfb_n / 2] * 1e6, ttfb[ttfb_n * 99 / 100] * 1e6);
  }

  for (long i = 0; i < conc; ++i) curl_easy_cleanup(xs[i].easy);
  curl_multi_cleanup(multi);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  free(xs);
  free(ttfb);
  return errors || done_count != total ? 1 : 0;
}
