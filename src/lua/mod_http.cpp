// luasync.http_native: the Lua binding of the HTTP transport (src/http). The Lua side is lua/luasync/http.lua.
//
//   native.start(ctx, method, url, headers, body, timeout, connect_timeout, max_body, flags, framing, body_size)
//       -> transfer | nil, message (bad options: nothing was sent)
//     headers: flat array {name, value, ...}, a header set, or nil; body: string or nil; times in seconds (0 = none);
//     max_body: bytes or -1; flags: kStream | kInsecure | kUpload | k*Deltas; framing: "sse" | "ndjson" | nil;
//     body_size: size of a streamed request body or -1 (chunked).
//   native.header_set({name, value, ...}) -> set | nil, message   headers checked once, for many requests
//   native.plain_delta(format, type, data) -> text | nil   the k*Deltas fast path on one event
//   native.set_drain(fn)   fn() runs from the loop whenever transfers have news; it calls native.next()
//   native.next() -> ctx, event, ... | nothing once every event is taken
//     kEvHeaders: status, headers   kEvDone: status, headers, body, url   kEvFail: kind, message
//     kEvReadable: (none)           kEvNeedBody: finished (true: the transfer ended, close the body stream)
//   native.stats() -> {live=, in_flight=, spin_hits=, spin_misses=, spin_waits=, spin_iterations=}
//   t:read() -> string | array of events (framing) | false (nothing yet: a kEvReadable follows) | nil (end)
//               | nil, kind, message
//   t:abort()          cancel (silent: no event follows)
//   t:feed(chunk|nil)  streamed request body: the next chunk, or the end
//   t:fail(message)    streamed request body: the source failed (the transfer fails, kind "cancelled")
//
// `ctx` is the Lua table that receives a transfer's events; it is the userdata's environment, and referenced
// from the registry while Lua is owed an event, so an abandoned streamed response can be collected (its
// __gc aborts the transfer). See http_transfer.h for the batching and ownership rules.
#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include <lauxlib.h>
}

#include "http/curl_preload.h"
#include "http/plain_delta.h"
#include "lua/http_transfer.h"
#include "lua/module.h"
#include "lua/runtime.h"

namespace luasync {
namespace {

using lhttp::Hub;
using lhttp::Transfer;

static_assert(LUA_NOREF == -2, "Transfer::ctx_ref uses -2 for 'no reference'");

constexpr const char* kMeta = "luasync.HttpTransfer";
constexpr const char* kHeaderSetMeta = "luasync.HttpHeaderSet";
using HeaderSetPtr = std::shared_ptr<const http::HeaderSet>;
enum Flags { kStream = 1, kInsecure = 2, kUpload = 4, kOpenAiDeltas = 8, kAnthropicDeltas = 16 };

// Per runtime; shared with the shutdown hook, so that either may go first.
struct Binding {
  Runtime* rt;
  Hub* hub = nullptr;  // null once closed
  int drain_ref = LUA_NOREF;
  int meta_ref = LUA_NOREF;  // the transfers' metatable (registry), also registered as kMeta
};
using BindingPtr = std::shared_ptr<Binding>;

Binding* GetBinding(lua_State* L) {
  return static_cast<BindingPtr*>(lua_touserdata(L, lua_upvalueindex(1)))->get();
}

// A transfer's userdata: a tag, then the Transfer (null once freed or after shutdown). Lua code cannot make a
// userdata of this size with this tag, so checking both replaces luaL_checkudata's registry lookup.
struct Box {
  uint64_t tag;
  Transfer* t;
};
constexpr uint64_t kBoxTag = 0x6c75617379686874;  // "luasyhht"

Transfer* CheckTransfer(lua_State* L) {
  auto* box = static_cast<Box*>(lua_touserdata(L, 1));
  if (!box || lua_type(L, 1) != LUA_TUSERDATA || lua_objlen(L, 1) != sizeof(Box) || box->tag != kBoxTag) {
    luaL_typerror(L, 1, kMeta);
  }
  return box->t;  // null after shutdown
}

void ReleaseIfIdle(lua_State* L, Transfer* t) {
  if (t->ctx_ref != LUA_NOREF && !t->queued && !t->NeedsRef()) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->ctx_ref);
    t->ctx_ref = LUA_NOREF;
  }
}

void PushHeaders(lua_State* L, const http::Headers& headers) {
  lua_createtable(L, 0, static_cast<int>(headers.size()));
  for (const auto& [name, value] : headers) {
    lua_pushlstring(L, name.data(), name.size());
    lua_pushlstring(L, value.data(), value.size());
    lua_rawset(L, -3);
  }
}

// Framed mode: the unread events as one array (a table per SSE event, a string per NDJSON line; with
// a delta format, a plain text delta after the first event is its text, a string).
// The field names are pushed once and set with lua_rawset (lua_setfield would hash its C string key per field),
// and an event type equal to the previous event's reuses that Lua string (most streams have one type).
void PushEvents(lua_State* L, Transfer* t) {
  const std::string& a = t->arena;
  lua_createtable(L, static_cast<int>(t->events.size()), 0);
  const int list = lua_gettop(L);
  int i = 0;
  if (t->framing == lhttp::Framing::kSse) {
    lua_pushliteral(L, "event");  // list + 1
    lua_pushliteral(L, "data");   // list + 2
    lua_pushliteral(L, "id");     // list + 3
    lua_pushnil(L);               // list + 4: the last event type, as a Lua string
    std::string_view last_type;
    bool have_type = false;
    for (const lhttp::EventSpan& e : t->events) {
      std::string_view type(a.data() + e.type_off, e.type_len);
      if (!have_type || type != last_type) {
        lua_pushlstring(L, type.data(), type.size());
        lua_replace(L, list + 4);
        last_type = type;
        have_type = true;
      }
      std::string_view data(a.data() + e.data_off, e.data_len), text;
      if (t->event_sent && http::PlainDelta(t->deltas, type, data, &text)) {
        lua_pushlstring(L, text.data(), text.size());
        lua_rawseti(L, list, ++i);
        continue;
      }
      t->event_sent = true;
      lua_createtable(L, 0, e.id_len > 0 ? 3 : 2);
      lua_pushvalue(L, list + 1);
      lua_pushvalue(L, list + 4);
      lua_rawset(L, -3);
      lua_pushvalue(L, list + 2);
      lua_pushlstring(L, a.data() + e.data_off, e.data_len);
      lua_rawset(L, -3);
      if (e.id_len > 0) {
        lua_pushvalue(L, list + 3);
        lua_pushlstring(L, a.data() + e.id_off, e.id_len);
        lua_rawset(L, -3);
      }
      lua_rawseti(L, list, ++i);
    }
    lua_settop(L, list);
  } else {
    for (const lhttp::EventSpan& e : t->events) {
      lua_pushlstring(L, a.data() + e.data_off, e.data_len);
      lua_rawseti(L, list, ++i);
    }
  }
  t->arena.clear();
  t->events.clear();
}

// {name, value, ...} at idx as Headers (non-string entries skipped: http.lua checked them).
http::Headers FlatHeaders(lua_State* L, int idx) {
  http::Headers headers;
  int n = static_cast<int>(lua_objlen(L, idx));
  headers.reserve(static_cast<size_t>(n / 2));
  for (int i = 1; i + 1 <= n; i += 2) {
    lua_rawgeti(L, idx, i);
    lua_rawgeti(L, idx, i + 1);
    size_t nl = 0, vl = 0;
    const char* name = lua_tolstring(L, -2, &nl);
    const char* value = lua_tolstring(L, -1, &vl);
    if (name && value) headers.emplace_back(std::string(name, nl), std::string(value, vl));
    lua_pop(L, 2);
  }
  return headers;
}

// Header sets live in Lua userdata, which LeakSanitizer does not scan: a script that ends by os.exit or an error
// (no lua_close) would have them reported. This list points at each while its userdata lives (a few per client).
std::vector<const void*>& LiveHeaderSets() {
  static auto* sets = new std::vector<const void*>;
  return *sets;
}

// native.header_set({name, value, ...}) -> set | nil, message: headers checked once, for many requests.
int l_header_set(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  std::string why;
  HeaderSetPtr set;
  try {
    http::Headers headers = FlatHeaders(L, 1);
    why = http::CheckHeaders(headers);
    if (why.empty()) set = std::make_shared<const http::HeaderSet>(std::move(headers));
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (!set) {
    lua_pushnil(L);
    lua_pushlstring(L, why.data(), why.size());
    return 2;
  }
  const void* raw = set.get();
  new (lua_newuserdata(L, sizeof(HeaderSetPtr))) HeaderSetPtr(std::move(set));
  luaL_getmetatable(L, kHeaderSetMeta);
  lua_setmetatable(L, -2);
  try {
    LiveHeaderSets().push_back(raw);
  } catch (const std::exception&) {  // out of memory: only the leak report would miss it
  }
  return 1;
}

// native.plain_delta("openai" | "anthropic", type, data) -> text | nil: the transport's fast path on one event
// (tests hold it to the Lua one).
int l_plain_delta(lua_State* L) {
  static const char* const kFormats[] = {"openai", "anthropic", nullptr};
  int format = luaL_checkoption(L, 1, nullptr, kFormats);
  size_t type_len = 0, len = 0;
  const char* type = luaL_checklstring(L, 2, &type_len);
  const char* data = luaL_checklstring(L, 3, &len);
  std::string_view text;
  auto which = format == 0 ? http::DeltaFormat::kOpenAi : http::DeltaFormat::kAnthropic;
  if (!http::PlainDelta(which, std::string_view(type, type_len), std::string_view(data, len), &text)) return 0;
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int l_header_set_gc(lua_State* L) {
  auto* set = static_cast<HeaderSetPtr*>(lua_touserdata(L, 1));
  auto& live = LiveHeaderSets();
  live.erase(std::remove(live.begin(), live.end(), set->get()), live.end());
  set->~HeaderSetPtr();
  return 0;
}

// native.start(...) -> transfer | nil, message
int l_start(lua_State* L) {
  Binding* b = GetBinding(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t method_len, url_len, body_len = 0;
  const char* method = luaL_checklstring(L, 2, &method_len);
  const char* url = luaL_checklstring(L, 3, &url_len);
  const char* body = lua_isstring(L, 5) ? lua_tolstring(L, 5, &body_len) : nullptr;
  lua_Number timeout = luaL_optnumber(L, 6, 0), connect_timeout = luaL_optnumber(L, 7, 0);
  lua_Number max_body = luaL_optnumber(L, 8, -1);
  int flags = static_cast<int>(luaL_optinteger(L, 9, 0));
  const char* framing = luaL_optstring(L, 10, nullptr);
  lua_Number body_size = luaL_optnumber(L, 11, -1);
  if (!b->hub) {
    lua_pushnil(L);
    lua_pushliteral(L, "luasync is shutting down");
    return 2;
  }
  auto* box = static_cast<Box*>(lua_newuserdata(L, sizeof(Box)));
  box->tag = kBoxTag;
  box->t = nullptr;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->meta_ref);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setfenv(L, -2);  // stack: ..., transfer

  http::RequestOptions o;
  o.method.assign(method, method_len);
  o.url.assign(url, url_len);
  if (lua_istable(L, 4)) {
    o.headers = FlatHeaders(L, 4);
  } else if (lua_isuserdata(L, 4)) {
    o.header_set = *static_cast<HeaderSetPtr*>(luaL_checkudata(L, 4, kHeaderSetMeta));
  }
  if (body) o.body.assign(body, body_len);
  auto ms = [](lua_Number s) { return s > 0 ? std::max(1L, static_cast<long>(std::ceil(s * 1000))) : 0L; };
  o.timeout_ms = ms(timeout);
  o.connect_timeout_ms = ms(connect_timeout);
  o.max_body = max_body >= 0 ? static_cast<int64_t>(max_body) : -1;
  o.insecure = (flags & kInsecure) != 0;
  o.body_size = body_size >= 0 ? static_cast<int64_t>(body_size) : -1;

  auto* t = new Transfer(b->hub);
  b->hub->Add(t);
  box->t = t;
  t->stream = (flags & kStream) != 0;
  if (t->stream && framing) {
    t->framing = std::string_view(framing) == "sse" ? lhttp::Framing::kSse : lhttp::Framing::kNdjson;
    if (t->framing == lhttp::Framing::kSse) {
      if (flags & kOpenAiDeltas) t->deltas = http::DeltaFormat::kOpenAi;
      if (flags & kAnthropicDeltas) t->deltas = http::DeltaFormat::kAnthropic;
    }
  }
  t->upload_active = (flags & kUpload) != 0;
  std::string error;
  bool ok;
  try {
    ok = t->Start(std::move(o), &error);
  } catch (const std::exception& e) {
    ok = false;
    error = e.what();
  }
  if (!ok) {
    t->Abort();
    lua_pushnil(L);
    lua_pushlstring(L, error.data(), error.size());
    return 2;
  }
  t->ctx_ref = b->rt->Ref(L, 1);
  return 1;
}

// native.next() -> ctx, event, ... | nothing
int l_next(lua_State* L) {
  Binding* b = GetBinding(L);
  if (!b->hub) return 0;
  while (Transfer* t = b->hub->Front()) {
    unsigned p = t->pending;
    unsigned ev = 0;  // the order Lua sees them in
    for (unsigned e : {lhttp::kEvHeaders, lhttp::kEvFail, lhttp::kEvDone, lhttp::kEvNeedBody, lhttp::kEvReadable}) {
      if (p & e) {
        ev = e;
        break;
      }
    }
    if (ev == 0 || t->ctx_ref == LUA_NOREF) {  // nothing left (aborted), or nobody to tell
      t->pending = 0;
      b->hub->Pop();
      ReleaseIfIdle(L, t);
      continue;
    }
    t->pending &= ~ev;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ctx_ref);  // held while queued
    lua_pushinteger(L, ev);
    int n = 0;
    switch (ev) {
      case lhttp::kEvHeaders:
        t->final_sent = true;
        lua_pushinteger(L, t->status);
        PushHeaders(L, t->headers);
        n = 2;
        break;
      case lhttp::kEvFail:
        t->final_sent = true;
        t->pending &= ~lhttp::kEvReadable;  // nobody reads a response that never came
        lua_pushstring(L, http::KindName(t->kind));
        lua_pushlstring(L, t->message.data(), t->message.size());
        n = 2;
        break;
      case lhttp::kEvDone:
        t->final_sent = true;
        lua_pushinteger(L, t->status);
        PushHeaders(L, t->headers);
        lua_pushlstring(L, t->body.data(), t->body.size());
        lua_pushlstring(L, t->url.data(), t->url.size());
        t->ReleaseBody();
        http::Headers().swap(t->headers);
        n = 4;
        break;
      case lhttp::kEvNeedBody:
        if (t->finished) t->upload_active = false;
        lua_pushboolean(L, t->finished);
        n = 1;
        break;
      default:
        break;
    }
    if (t->pending == 0) {
      b->hub->Pop();
      ReleaseIfIdle(L, t);
    }
    return 2 + n;
  }
  return 0;
}

// t:read() -> string | events | false | nil | nil, kind, message
int l_read(lua_State* L) {
  Transfer* t = CheckTransfer(L);
  if (!t) return 0;
  if (t->framed) {
    if (!t->events.empty()) {
      PushEvents(L, t);
      t->Drained();
      return 1;
    }
  } else if (t->head < t->body.size()) {
    size_t n = std::min(t->body.size() - t->head, lhttp::kMaxRead);
    lua_pushlstring(L, t->body.data() + t->head, n);
    t->head += n;
    if (t->head == t->body.size()) {
      t->body.clear();
      t->head = 0;
    }
    t->Drained();
    return 1;
  }
  if (t->finished) {
    t->ReleaseBody();
    if (t->kind == http::ErrorKind::kOk || t->aborted) return 0;
    lua_pushnil(L);
    lua_pushstring(L, http::KindName(t->kind));
    lua_pushlstring(L, t->message.data(), t->message.size());
    return 3;
  }
  t->waiting = true;
  if (t->ctx_ref == LUA_NOREF) {
    lua_getfenv(L, 1);
    t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  t->Drained();  // nothing is buffered: make sure the transfer is not paused
  lua_pushboolean(L, 0);
  return 1;
}

// t:abort()
int l_abort(lua_State* L) {
  if (Transfer* t = CheckTransfer(L)) {
    t->Abort();
    ReleaseIfIdle(L, t);
  }
  return 0;
}

// t:feed(chunk | nil)
int l_feed(lua_State* L) {
  Transfer* t = CheckTransfer(L);
  if (!t || !t->upload_active) return 0;
  size_t len = 0;
  const char* chunk = lua_tolstring(L, 2, &len);
  if (chunk) {
    t->upload.append(chunk, len);
  } else {
    t->upload_end = true;
    t->upload_active = false;
  }
  t->BodyReady();
  ReleaseIfIdle(L, t);
  return 0;
}

// t:fail(message)
int l_fail(lua_State* L) {
  Transfer* t = CheckTransfer(L);
  if (!t || !t->upload_active) return 0;
  size_t len = 0;
  const char* msg = luaL_optlstring(L, 2, "body stream failed", &len);
  t->upload_error.assign(msg, len);
  t->upload_failed = true;
  t->upload_active = false;
  t->BodyReady();
  ReleaseIfIdle(L, t);
  return 0;
}

int l_gc(lua_State* L) {
  auto* box = static_cast<Box*>(lua_touserdata(L, 1));
  Transfer* t = box->t;
  if (!t) return 0;
  box->t = nullptr;
  Hub* hub = t->hub;
  if (!hub->closed()) {
    t->Abort();
    if (t->ctx_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->ctx_ref);
  }
  delete t;
  hub->MaybeDelete();
  return 0;
}

// native.set_drain(fn)
int l_set_drain(lua_State* L) {
  Binding* b = GetBinding(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  b->rt->Unref(b->drain_ref);
  b->drain_ref = b->rt->Ref(L, 1);
  return 0;
}

// native.stats() -> {live=, in_flight=, spin_*=}: transfers held by Lua, in flight, and Multi::SpinStats
int l_stats(lua_State* L) {
  Binding* b = GetBinding(L);
  lua_createtable(L, 0, 6);
  int in_flight = 0;
  if (b->hub) in_flight = static_cast<int>(b->hub->in_flight());
  lua_pushinteger(L, in_flight);
  lua_setfield(L, -2, "in_flight");
  lua_pushinteger(L, b->hub ? static_cast<int>(b->hub->live()) : 0);
  lua_setfield(L, -2, "live");
  http::Multi::SpinStats spin = b->hub ? b->hub->spin_stats() : http::Multi::SpinStats{};
  const struct {
    const char* name;
    uint64_t value;
  } counts[] = {{"spin_hits", spin.hits}, {"spin_misses", spin.misses}, {"spin_waits", spin.waits},
                {"spin_iterations", spin.iterations}};
  for (const auto& c : counts) {
    lua_pushnumber(L, static_cast<lua_Number>(c.value));
    lua_setfield(L, -2, c.name);
  }
  return 1;
}

int l_binding_gc(lua_State* L) {
  static_cast<BindingPtr*>(lua_touserdata(L, 1))->~BindingPtr();
  return 0;
}

int luaopen_http_native(lua_State* L) {
  http::StartCurlPreload();  // a request is likely soon: load libcurl while the script goes on
  Runtime* rt = Runtime::Get(L);
  auto binding = std::make_shared<Binding>();
  binding->rt = rt;
  // The functions below hold the binding in userdata, which lua_close releases. A script that ends by os.exit
  // never gets there, and LeakSanitizer does not scan LuaJIT's memory: this reference keeps the 40 bytes
  // reachable until the process ends.
  static BindingPtr last_binding;
  last_binding = binding;
  Binding* raw = binding.get();
  binding->hub = new Hub(rt->loop(), [raw] {
    if (!raw->rt->L() || raw->drain_ref == LUA_NOREF) return;
    raw->rt->PushRef(raw->drain_ref);
    raw->rt->Dispatch(0);
  });
  rt->AtShutdown([binding] {
    Hub* hub = binding->hub;
    if (!hub) return;
    binding->hub = nullptr;
    Runtime* rt = binding->rt;
    hub->Close([rt](int ref) { rt->Unref(ref); });
    rt->Unref(binding->drain_ref);
    binding->drain_ref = LUA_NOREF;
  });

  luaL_newmetatable(L, kMeta);
  lua_pushvalue(L, -1);
  binding->meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  static const luaL_Reg methods[] = {
      {"read", l_read}, {"abort", l_abort}, {"feed", l_feed}, {"fail", l_fail}, {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, kHeaderSetMeta);
  lua_pushcfunction(L, l_header_set_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_newtable(L);
  static const luaL_Reg fns[] = {{"start", l_start},
                                 {"next", l_next},
                                 {"set_drain", l_set_drain},
                                 {"stats", l_stats},
                                 {nullptr, nullptr}};
  for (const luaL_Reg* f = fns; f->name; ++f) {
    new (lua_newuserdata(L, sizeof(BindingPtr))) BindingPtr(binding);
    lua_newtable(L);
    lua_pushcfunction(L, l_binding_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  static const luaL_Reg plain_fns[] = {
      {"header_set", l_header_set}, {"plain_delta", l_plain_delta}, {nullptr, nullptr}};
  luaL_register(L, nullptr, plain_fns);  // (no binding needed)
  static const struct {
    const char* name;
    int value;
  } kConstants[] = {
      {"HEADERS", lhttp::kEvHeaders}, {"DONE", lhttp::kEvDone},         {"FAIL", lhttp::kEvFail},
      {"READABLE", lhttp::kEvReadable}, {"NEED_BODY", lhttp::kEvNeedBody}, {"STREAM", kStream},
      {"INSECURE", kInsecure},        {"UPLOAD", kUpload},                {"OPENAI_DELTAS", kOpenAiDeltas},
      {"ANTHROPIC_DELTAS", kAnthropicDeltas},
  };
  for (const auto& c : kConstants) {
    lua_pushinteger(L, c.value);
    lua_setfield(L, -2, c.name);
  }
  return 1;
}

}  // namespace

LUASYNC_MODULE("luasync.http_native", luaopen_http_native);

}  // namespace luasync
