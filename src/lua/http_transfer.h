// The state behind one Lua HTTP transfer, and the hub that batches their news for Lua. No Lua in here: the
// binding (mod_http.cpp) reads these objects from lua_CFunctions and from the hub's flush callback.
//
// Events. curl callbacks (on_headers, on_chunk, on_done, the body source) run while curl is on the stack, where
// no Lua may run. They only record what happened in the Transfer and queue it on the Hub (Transfer::Queue). The
// hub then calls its flush function from the end of the Multi's socket or timer callback that produced the news
// (once curl has returned; at most once per loop iteration), else from a uv_check_t (right after the poll
// phase) or a uv_idle_t (which also keeps poll from blocking while news waits), never from inside a curl call. The binding's flush makes one Lua call that drains every queued event
// (Hub::Next), so 256 transfers finishing in one poll cost one trip into Lua, not 256.
//
// Ownership.
// - The Hub owns the Multi (created on the first request), its two uv handles and the ready queue. It lives
//   until the runtime shuts down (Close) and the last Transfer is gone.
// - Each Transfer is owned by its Lua userdata (freed by __gc or at lua_close). It holds a non-owning Request*
//   while the transfer is in flight (see request.h: valid until on_done, Abort() or the Multi's end).
// - A Transfer in the ready queue keeps its Lua context referenced (ctx_ref), so its userdata cannot be
//   collected while queued.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/multi.h"
#include "http/ndjson.h"
#include "http/plain_delta.h"
#include "http/request.h"
#include "http/sse.h"
#include "lua/huge_blocks.h"

struct uv_loop_s;
struct uv_check_s;
struct uv_idle_s;
struct uv_prepare_s;

namespace luasync::lhttp {

/// What a Transfer owes Lua. The numbers are the event codes the Lua side sees.
enum Event : unsigned {
  kEvHeaders = 1,   ///< stream mode: status and headers arrived
  kEvDone = 2,      ///< buffered mode: the whole response
  kEvFail = 4,      ///< failed before Lua got a response (buffered mode, or stream mode before headers)
  kEvReadable = 8,  ///< stream mode: a waiting reader can read (data, end or error)
  kEvNeedBody = 16, ///< streamed request body: curl wants the next chunk (or the transfer ended)
};

enum class Framing { kNone, kSse, kNdjson };

/// When a streamed response holds this many unread bytes, the transfer is paused (curl stops reading the
/// socket) until the reader takes them.
constexpr size_t kHighWater = 256 * 1024;
/// Largest string one read of a streamed body returns. LuaJIT allocates strings of 128 KiB and more with a
/// fresh mmap each (page faults on every use); smaller ones come from its arenas.
constexpr size_t kMaxRead = 64 * 1024;

class Hub;

/// A response body being collected: large ones live in huge pages (lua/huge_blocks.h), where a fresh 1 MiB
/// buffer is one page fault instead of 256.
using BodyBuffer = huge::Bytes;

/// One SSE event, as offsets into Transfer::arena.
struct EventSpan {
  uint32_t type_off, type_len, data_off, data_len, id_off, id_len;
};

struct Transfer {
  explicit Transfer(Hub* hub) : hub(hub) {}
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  /// Starts the request. On bad options returns false with *error set (nothing is sent).
  bool Start(http::RequestOptions options, std::string* error);
  /// Cancels: aborts the request, drops buffered data and pending events. Idempotent.
  void Abort();

  /// Queues the events in `ev` for Lua (ctx_ref must be held).
  void Queue(unsigned ev);
  /// Whether Lua still needs to be told something (so ctx_ref must stay held).
  bool NeedsRef() const { return !aborted && (!final_sent || waiting || upload_active); }

  /// Stream mode: resumes delivery once the reader took buffered data.
  void Drained();
  /// Gives the body buffer back to the hub's pool (its capacity is reused by the next transfer).
  void ReleaseBody();
  void Grow(size_t need, bool exact);
  /// Streamed request body: more data (or the end) is available.
  void BodyReady();

  Hub* hub;
  http::Request* req = nullptr;  ///< non-owning; null once done or aborted
  Transfer* prev = nullptr;      ///< Hub::live list
  Transfer* next = nullptr;
  int ctx_ref = -2;              ///< registry ref of the Lua context (LUA_NOREF when not held)
  unsigned pending = 0;          ///< Event bits not yet delivered
  bool queued = false;           ///< in Hub::ready

  // Mode.
  bool stream = false;           ///< body delivered in pieces (else collected, delivered with kEvDone)
  Framing framing = Framing::kNone;
  bool framed = false;           ///< framing applies (a 2xx response)
  /// SSE: after the first event, a plain text delta in this format reaches Lua as its text alone (plain_delta.h)
  http::DeltaFormat deltas = http::DeltaFormat::kNone;
  bool event_sent = false;       ///< framed: Lua has had an event (the first always goes whole)

  // Response.
  int status = 0;
  http::Headers headers;
  std::string url;               ///< effective URL (buffered mode)
  BodyBuffer body;               ///< buffered mode: the whole body; stream mode: raw bytes, unread from `head`
  size_t head = 0;               ///< stream mode: bytes of `body` already read
  std::string arena;             ///< framed mode: bytes of unread events
  std::vector<EventSpan> events; ///< framed mode: unread events (ndjson: data only)
  size_t buffered = 0;           ///< unread bytes (stream mode)
  http::ErrorKind kind = http::ErrorKind::kOk;
  std::string message;           ///< failure text (kind != kOk)
  bool finished = false;         ///< on_done ran, or aborted
  bool aborted = false;
  bool final_sent = false;       ///< Lua got kEvDone/kEvFail (buffered) or kEvHeaders/kEvFail (stream)
  bool waiting = false;          ///< a reader waits for kEvReadable

  // Streamed request body.
  bool upload_active = false;    ///< Lua is pumping a body stream into us
  std::string upload;            ///< bytes Lua fed, not yet taken by curl
  bool upload_end = false;
  bool upload_failed = false;
  std::string upload_error;

 private:
  void OnHeaders(int status, const http::Headers& headers);
  bool OnChunk(const char* data, size_t len);
  void OnDone(http::Result&& result);
  http::BodyPull PullBody(std::string& out);
  void AddEvent(std::string_view type, std::string_view data, std::string_view id);
  void FramingFailed(const std::string& why);
  void WakeReader();

  std::unique_ptr<http::SseParser> sse_;
  std::unique_ptr<http::NdjsonFramer> ndjson_;
};

class Hub {
 public:
  /// flush: called from a loop callback (never inside curl) when transfers have queued events.
  Hub(uv_loop_s* loop, std::function<void()> flush);
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// The Multi, created on first use. Throws if curl cannot be initialised.
  http::Multi* multi();

  /// The next transfer with queued events, or nullptr once the queue is empty. A transfer stays at the front
  /// until its `pending` bits are all cleared; the caller clears them and calls Pop() when done with it.
  Transfer* Front();
  void Pop();

  void Add(Transfer* t);      ///< into the live list
  void Remove(Transfer* t);   ///< out of the live list (and the ready queue)
  void Ready(Transfer* t);    ///< into the ready queue

  /// Runtime shutdown: frees the Multi (every transfer in flight with it, silently), closes the uv handles.
  /// Transfers keep their memory until their userdata goes; the hub deletes itself once they are all gone.
  /// `unref(ref)` releases a Transfer's context reference.
  void Close(const std::function<void(int)>& unref);
  bool closed() const { return closed_; }

  size_t live() const { return live_count_; }
  size_t in_flight() const { return multi_ ? multi_->active() : 0; }
  http::Multi::SpinStats spin_stats() const { return multi_ ? multi_->spin_stats() : http::Multi::SpinStats{}; }

  /// Body buffers are pooled: fresh memory costs page faults (one per 2 MiB for large ones, in huge pages).
  BodyBuffer TakeBuffer();
  void GiveBuffer(BodyBuffer&& buffer);

  /// Deletes the hub if it is closed and no transfer is left.
  void MaybeDelete();

 private:
  ~Hub() = default;
  struct Glue;
  void Flush();
  void FlushEarly(bool from_socket);

  uv_loop_s* loop_;
  std::function<void()> flush_;
  std::unique_ptr<http::Multi> multi_;
  uv_check_s* check_ = nullptr;   // owned; freed in its close callback
  uv_idle_s* idle_ = nullptr;     // owned; freed in its close callback
  uv_prepare_s* prepare_ = nullptr;  // owned, unreferenced: counts loop iterations
  bool armed_ = false;            // check_ and idle_ are started
  uint64_t iteration_ = 0;        // loop iterations seen by prepare_
  uint64_t early_at_ = ~uint64_t{0};  // iteration of the last flush from a Multi callback
  unsigned early_count_ = 0;          // flushes from Multi callbacks in that iteration
  std::vector<Transfer*> ready_;
  size_t head_ = 0;
  Transfer* live_ = nullptr;
  size_t live_count_ = 0;
  std::vector<BodyBuffer> spare_;  // cleared buffers kept for reuse
  bool closed_ = false;
};

}  // namespace luasync::lhttp
