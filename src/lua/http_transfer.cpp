#include "lua/http_transfer.h"

#include <uv.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include "lua/prefault.h"

namespace luasync::lhttp {

namespace {
constexpr int kNoRef = -2;  // LUA_NOREF
constexpr size_t kEarlyBatch = 32;                   // Hub::FlushEarly
constexpr unsigned kTimerChain = 8;                  // Hub::FlushEarly
constexpr long kCurlBuffer = 64 * 1024;              // CURLOPT_BUFFERSIZE: 16 KiB reads cost twice the CPU per MB
constexpr long kFramedBuffer = 16 * 1024;            // CURLOPT_BUFFERSIZE of event streams (Transfer::Start)
constexpr size_t kMaxSpare = 16;                      // pooled body buffers
constexpr size_t kMinPooled = 4096;                   // smaller buffers are not worth pooling
constexpr size_t kMaxSpareCapacity = 8u << 20;        // larger buffers are freed
constexpr int64_t kMaxReserve = 64 << 20;             // trust Content-Length this far for one allocation
constexpr size_t kPrefault = 256 * 1024;              // fresh buffers this large are faulted in at once

// LUASYNC_HTTP_SPIN_US: the busy-wait budget (http/spin_policy.h), if set; else the Multi's default.
long SpinBudget(long fallback) {
  const char* text = std::getenv("LUASYNC_HTTP_SPIN_US");
  if (!text || !*text) return fallback;
  const char* end = text + std::strlen(text);
  long value = -1;
  auto [stop, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || stop != end || value < 0 || value > http::SpinPolicy::kMaxBudgetUs) {
    throw std::runtime_error("LUASYNC_HTTP_SPIN_US must be a whole number of microseconds from 0 to 1000000, got \"" +
                             std::string(text).substr(0, 40) + "\"");
  }
  return value;
}

int64_t ContentLength(const http::Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (name != "content-length") continue;
    int64_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9' || n > kMaxReserve) return -1;
      n = n * 10 + (c - '0');
    }
    return value.empty() ? -1 : n;
  }
  return -1;
}
}

// ---------------------------------------------------------------------------
// Transfer

Transfer::~Transfer() {
  ReleaseBody();
  hub->Remove(this);
}

bool Transfer::Start(http::RequestOptions options, std::string* error) {
  // Both modes take the body through on_chunk, into a pooled buffer (the transport's own collection would
  // grow a fresh string per response).
  http::RequestCallbacks callbacks;
  callbacks.on_headers = [this](int s, const http::Headers& h) { OnHeaders(s, h); };
  callbacks.on_chunk = [this](const char* data, size_t len) { return OnChunk(data, len); };
  callbacks.on_done = [this](http::Result&& result) { OnDone(std::move(result)); };
  if (upload_active) options.body_source = [this](std::string& out) { return PullBody(out); };
  // Events (SSE, NDJSON) arrive a few hundred bytes at a time: a large receive buffer buys nothing there, and
  // with many streams at once it cost time (1,000 LLM streams: 64 MiB of buffers instead of 16; paired with the
  // C floor, TTFT +21.9 -> +13.4 ms and CPU 1.087x -> 1.045x with 16 KiB, bench/README-llm.md).
  if (framing != Framing::kNone) options.buffer_size = kFramedBuffer;
  req = hub->multi()->Start(std::move(options), std::move(callbacks), error);
  PrefaultHeapTop();  // a burst of starts grows the heap by an easy handle and more each
  return req != nullptr;
}

void Transfer::Abort() {
  if (req) req->Abort();  // silent: the Lua side reports "cancelled" itself
  req = nullptr;
  if (!finished) {
    finished = true;
    kind = http::ErrorKind::kCancelled;
    message = "cancelled";
  }
  aborted = true;
  pending = 0;  // a queued entry is skipped (and its reference dropped) when the drain reaches it
  waiting = false;
  upload_active = false;
  ReleaseBody();
  arena.clear();
  events.clear();
  buffered = 0;
}

void Transfer::ReleaseBody() {
  if (body.capacity() >= kMinPooled && !hub->closed()) hub->GiveBuffer(std::move(body));
  body = BodyBuffer();
  head = 0;
}

void Transfer::Queue(unsigned ev) {
  pending |= ev;
  if (queued) return;
  queued = true;
  hub->Ready(this);
}

void Transfer::Drained() {
  buffered = framed ? 0 : body.size() - head;
  if (req && req->paused() && buffered < kHighWater) req->Resume();  // resumes from a later loop callback
}

void Transfer::BodyReady() {
  if (req) req->BodyReady();
}

void Transfer::WakeReader() {
  if (!waiting) return;
  if (buffered == 0 && events.empty() && !finished) return;
  waiting = false;
  Queue(kEvReadable);
}

void Transfer::OnHeaders(int s, const http::Headers& h) {
  if (body.capacity() < kMinPooled) body = hub->TakeBuffer();
  if (!stream) {  // status and headers come with on_done; size the buffer once
    int64_t length = ContentLength(h);
    if (length > 0 && static_cast<size_t>(length) > body.capacity()) Grow(static_cast<size_t>(length), true);
    return;
  }
  status = s;
  headers = h;
  framed = framing != Framing::kNone && s >= 200 && s < 300;  // error bodies stay readable as text
  if (framed && framing == Framing::kSse) {
    sse_ = std::make_unique<http::SseParser>(
        [this](const http::SseEvent& e) { AddEvent(e.type, e.data, e.id); });
  } else if (framed) {
    ndjson_ = std::make_unique<http::NdjsonFramer>([this](std::string_view line) { AddEvent({}, line, {}); });
  }
  Queue(kEvHeaders);
}

void Transfer::AddEvent(std::string_view type, std::string_view data, std::string_view id) {
  EventSpan e;
  auto put = [this](std::string_view s, uint32_t* off, uint32_t* len) {
    *off = static_cast<uint32_t>(arena.size());
    *len = static_cast<uint32_t>(s.size());
    arena.append(s);
  };
  put(type, &e.type_off, &e.type_len);
  put(data, &e.data_off, &e.data_len);
  put(id, &e.id_off, &e.id_len);
  events.push_back(e);
  buffered += type.size() + data.size() + id.size() + 16;
}

void Transfer::FramingFailed(const std::string& why) {
  if (req) req->Abort();  // inside curl: freed right after curl returns, no further callbacks
  req = nullptr;
  finished = true;
  kind = http::ErrorKind::kProtocol;
  message = (framing == Framing::kSse ? "sse: " : "ndjson: ") + why;
  WakeReader();
  if (upload_active) Queue(kEvNeedBody);
}

// Room for `need` bytes of body: exactly that when Content-Length gave it, else at least double. A large fresh
// buffer is faulted in at once (lua/prefault.h) rather than a page at a time as the body is appended, unless
// it lies in huge pages (lua/huge_blocks.h): one fault per 2 MiB there, and a block reused from the free list
// is resident already (populating it again walks every page for nothing).
void Transfer::Grow(size_t need, bool exact) {
  body.reserve(exact ? need : std::max(need, 2 * body.capacity()));
  if (body.capacity() >= kPrefault && !(huge::Owns(body.data()) && huge::PagesAreHuge())) {
    Prefault(body.data(), body.capacity());
  }
}

bool Transfer::OnChunk(const char* data, size_t len) {
  if (framed) {
    bool ok = sse_ ? sse_->Feed(data, len) : ndjson_->Feed(data, len);
    if (!ok) {
      FramingFailed(sse_ ? sse_->error() : ndjson_->error());
      return false;
    }
  } else if (!stream) {
    if (body.size() + len > body.capacity()) Grow(body.size() + len, false);
    body.append(data, len);
    return false;
  } else {
    if (head > 0 && head >= body.size() / 2) {  // keep unread bytes at the front, without growing
      body.erase(0, head);
      head = 0;
    }
    body.append(data, len);
    buffered += len;
  }
  WakeReader();
  return buffered >= kHighWater;
}

void Transfer::OnDone(http::Result&& result) {
  req = nullptr;  // the Multi frees the Request when we return
  finished = true;
  kind = result.kind;
  message = std::move(result.message);
  if (!stream) {
    status = result.status;
    headers = std::move(result.headers);
    url = std::move(result.url);
    Queue(kind == http::ErrorKind::kOk ? kEvDone : kEvFail);
  } else {
    if (kind != http::ErrorKind::kOk && !final_sent && !(pending & kEvHeaders)) Queue(kEvFail);
    if (kind == http::ErrorKind::kOk && ndjson_) ndjson_->Finish();  // a last line without newline
    WakeReader();
  }
  if (upload_active) Queue(kEvNeedBody);  // Lua sees `finished` and closes the body stream
}

http::BodyPull Transfer::PullBody(std::string& out) {
  if (!upload.empty()) {
    out.swap(upload);
    return http::BodyPull::kData;
  }
  if (upload_end) return http::BodyPull::kEnd;
  if (upload_failed) {
    out = upload_error;
    return http::BodyPull::kFail;
  }
  Queue(kEvNeedBody);
  return http::BodyPull::kWait;
}

// ---------------------------------------------------------------------------
// Hub

struct Hub::Glue {
  static void Check(uv_check_t* h) { static_cast<Hub*>(h->data)->Flush(); }
  static void Idle(uv_idle_t* h) { static_cast<Hub*>(h->data)->Flush(); }
  static void Prepare(uv_prepare_t* h) { ++static_cast<Hub*>(h->data)->iteration_; }
  static void AfterCurl(void* hub, bool from_socket) { static_cast<Hub*>(hub)->FlushEarly(from_socket); }
  static void PrepareClosed(uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); }
  static void CheckClosed(uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); }
  static void IdleClosed(uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); }
};

Hub::Hub(uv_loop_s* loop, std::function<void()> flush) : loop_(loop), flush_(std::move(flush)) {
  check_ = new uv_check_t;
  uv_check_init(loop, check_);
  check_->data = this;
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, &Glue::Prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

http::Multi* Hub::multi() {
  if (!multi_) {
    http::Multi::Options options;
    options.buffer_size = kCurlBuffer;
    options.spin_us = SpinBudget(options.spin_us);
    multi_ = std::make_unique<http::Multi>(loop_, options);
    multi_->SetAfterCallback(&Glue::AfterCurl, this);
  }
  return multi_.get();
}

void Hub::Ready(Transfer* t) {
  ready_.push_back(t);
  if (!armed_ && !closed_) {
    armed_ = true;
    uv_check_start(check_, &Glue::Check);
    uv_idle_start(idle_, &Glue::Idle);  // poll must not block while Lua has news to read
  }
}

Transfer* Hub::Front() {
  while (head_ < ready_.size()) {
    if (Transfer* t = ready_[head_]) return t;
    ++head_;
  }
  ready_.clear();
  head_ = 0;
  return nullptr;
}

void Hub::Pop() {
  if (head_ < ready_.size()) {
    ready_[head_]->queued = false;
    ++head_;
  }
}

// From the end of a Multi socket or timer callback: deliver the news at once rather than from the check or idle
// phase. A response found right after its request was sent (loopback) is then in Lua within the same timer
// callback, and the next request goes out without another loop iteration (and its epoll_wait). Once per loop
// iteration, and again after socket events whenever kEarlyBatch transfers have news: one iteration can read a
// thousand sockets, and news held until its end reaches every reader late (the first socket's as late as the
// last's). After timer callbacks, up to kTimerChain times per iteration: a request started from the flush runs
// curl's 0 ms timer again in the same timer pass (libuv runs a timer re-armed at 0 ms at once), and its response
// may be there already; a longer chain must not keep the loop from polling other handles.
void Hub::FlushEarly(bool from_socket) {
  if (closed_ || head_ >= ready_.size()) return;
  if (early_at_ != iteration_) {
    early_at_ = iteration_;
    early_count_ = 0;
  } else if (from_socket ? ready_.size() - head_ < kEarlyBatch : early_count_ >= kTimerChain) {
    return;
  }
  ++early_count_;
  Flush();
}

void Hub::Flush() {
  if (armed_) {
    armed_ = false;
    uv_check_stop(check_);
    uv_idle_stop(idle_);
  }
  if (closed_ || head_ >= ready_.size()) return;
  flush_();  // drains the queue through Front()/Pop(); may queue more (then we are armed again)
}

void Hub::Add(Transfer* t) {
  t->next = live_;
  t->prev = nullptr;
  if (live_) live_->prev = t;
  live_ = t;
  ++live_count_;
}

void Hub::Remove(Transfer* t) {
  if (t->prev) t->prev->next = t->next;
  else if (live_ == t) live_ = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = nullptr;
  --live_count_;
  if (t->queued) {
    std::replace(ready_.begin() + static_cast<std::ptrdiff_t>(head_), ready_.end(), t, static_cast<Transfer*>(nullptr));
    t->queued = false;
  }
}

void Hub::Close(const std::function<void(int)>& unref) {
  if (closed_) return;
  closed_ = true;
  for (Transfer* t = live_; t; t = t->next) {
    t->req = nullptr;  // ~Multi frees the Requests without calling back
    if (t->ctx_ref != kNoRef) unref(t->ctx_ref);
    t->ctx_ref = kNoRef;
    t->pending = 0;
    t->queued = false;
    t->waiting = false;
    t->upload_active = false;
    if (!t->finished) {
      t->finished = true;
      t->kind = http::ErrorKind::kCancelled;
      t->message = "cancelled: luasync is exiting";
    }
  }
  ready_.clear();
  head_ = 0;
  multi_.reset();
  spare_.clear();
  armed_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(check_), &Glue::CheckClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), &Glue::IdleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(prepare_), &Glue::PrepareClosed);
  check_ = nullptr;
  idle_ = nullptr;
  prepare_ = nullptr;
  MaybeDelete();
}

BodyBuffer Hub::TakeBuffer() {
  if (spare_.empty()) return BodyBuffer();
  BodyBuffer buffer = std::move(spare_.back());
  spare_.pop_back();
  return buffer;
}

void Hub::GiveBuffer(BodyBuffer&& buffer) {
  if (spare_.size() >= kMaxSpare || buffer.capacity() > kMaxSpareCapacity) return;
  buffer.clear();
  spare_.push_back(std::move(buffer));
}

void Hub::MaybeDelete() {
  if (closed_ && !live_) delete this;
}

}  // namespace luasync::lhttp
