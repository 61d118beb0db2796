// json.encode: walks Lua values with the raw C API and writes JSON text into
// one growable buffer. No nlohmann DOM is built: a DOM would copy every
// string twice and the walk would be slower than writing directly.
#include "lua/json_encode.h"

#include "lua/json_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

extern "C" {
#include <lauxlib.h>
}

namespace luasync::json {
namespace {

constexpr int kTypeCdata = 10;  // LuaJIT's LUA_TCDATA (not in lua.h)

// Fixed stack slots Encode() sets up before walking.
constexpr int kArrayMt = 3;
constexpr int kObjectMt = 4;
constexpr int kCdataFn = 5;
constexpr int kScratch = 6;  // only with sort_keys

// Byte classes for strings: 0 = copy as is, 1 = start of a UTF-8 sequence,
// anything else is the letter after the backslash ('u' = \u00XX).
struct EscapeTable {
  char cls[256];
  constexpr EscapeTable() : cls() {
    for (int c = 0; c < 0x20; ++c) cls[c] = 'u';
    cls['\b'] = 'b';
    cls['\t'] = 't';
    cls['\n'] = 'n';
    cls['\f'] = 'f';
    cls['\r'] = 'r';
    cls['"'] = '"';
    cls['\\'] = '\\';
    for (int c = 0x80; c < 0x100; ++c) cls[c] = 1;
  }
};
constexpr EscapeTable kEscape;

// Output buffer. Owns its malloc'd memory; throws std::bad_alloc when full.
// Its memory comes from, and goes back to, a per-state BufferCache, so that
// repeated encodes reuse one buffer (lua-cjson keeps its buffer too).
class Out {
 public:
  explicit Out(BufferCache* cache) : cache_(cache), data_(cache->data), cap_(cache->cap) {
    cache->data = nullptr;
    cache->cap = 0;
  }
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  ~Out() {
    if (cap_ <= kKeepBytes && cache_->data == nullptr) {
      cache_->data = data_;
      cache_->cap = cap_;
    } else {
      std::free(data_);
    }
  }

  char* Reserve(size_t n) {
    if (cap_ - len_ < n) Grow(n);
    return data_ + len_;
  }
  void Commit(size_t n) { len_ += n; }
  void Put(char c) {
    Reserve(1)[0] = c;
    ++len_;
  }
  void Put(const char* s, size_t n) {
    std::memcpy(Reserve(n), s, n);
    len_ += n;
  }
  // Only after Reserve() has made room.
  void PutReserved(char c) { data_[len_++] = c; }
  void PutReserved(const char* s, size_t n) {
    std::memcpy(data_ + len_, s, n);
    len_ += n;
  }
  void Spaces(size_t n) {
    std::memset(Reserve(n), ' ', n);
    len_ += n;
  }
  const char* data() const { return data_; }
  size_t size() const { return len_; }

 private:
  static constexpr size_t kKeepBytes = size_t{32} << 20;

  void Grow(size_t n) {
    size_t cap = std::max<size_t>({cap_ * 2, len_ + n, 4096});
    char* p = static_cast<char*>(std::realloc(data_, cap));
    if (!p) throw std::bad_alloc();
    data_ = p;
    cap_ = cap;
  }
  BufferCache* cache_;
  char* data_;
  size_t len_ = 0, cap_;
};

class Encoder {
 public:
  Encoder(lua_State* L, BufferCache* cache, bool pretty, bool sort)
      : L_(L), pretty_(pretty), sort_(sort), out_(cache) {}

  // Encodes the value at stack index idx. On false, error() says why.
  bool Run(int idx) { return Value(idx, 0); }
  const Out& out() const { return out_; }
  const std::string& error() const { return error_; }

 private:
  struct Entry {  // one member of an object being sorted
    const char* key;
    size_t len;
    int slot;     // index of the value in the scratch table
  };

  bool Value(int idx, int depth);
  bool Table(int idx, int depth);
  bool Array(int idx, size_t n, int depth);
  bool Object(int idx, int depth);
  bool SortedObject(int idx, int depth);
  bool Key(int idx);
  bool Number(double d);
  bool String(const char* s, size_t n);
  bool Cdata(int idx);
  bool IsArray(int idx, size_t* n);

  void Newline(int depth) {
    out_.Put('\n');
    out_.Spaces(2 * static_cast<size_t>(depth));
  }
  bool Fail(std::string why) {
    error_ = "json.encode: " + why;
    return false;
  }

  lua_State* L_;
  bool pretty_, sort_;
  Out out_;
  std::string error_;
  std::vector<const void*> open_;  // tables being encoded, outermost first
  std::vector<Entry> entries_;     // members of the objects being sorted
  int scratch_top_ = 0;            // last used slot of the scratch table
};

bool Encoder::Value(int idx, int depth) {
  const int type = lua_type(L_, idx);
  switch (type) {
    case LUA_TNIL:
      out_.Put("null", 4);
      return true;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L_, idx)) out_.Put("true", 4);
      else out_.Put("false", 5);
      return true;
    case LUA_TNUMBER:
      return Number(lua_tonumber(L_, idx));
    case LUA_TSTRING: {
      size_t n;
      const char* s = lua_tolstring(L_, idx, &n);
      return String(s, n);
    }
    case LUA_TTABLE:
      return Table(idx, depth);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L_, idx) == nullptr) {  // json.null
        out_.Put("null", 4);
        return true;
      }
      return Fail("cannot encode a lightuserdata other than json.null");
    case kTypeCdata:
      return Cdata(idx);
    default:
      return Fail(std::string("cannot encode a value of type ") + lua_typename(L_, type));
  }
}

bool Encoder::Number(double d) {
  if (std::isnan(d)) return Fail("cannot encode NaN");
  if (std::isinf(d)) return Fail(d > 0 ? "cannot encode inf" : "cannot encode -inf");
  char* p = out_.Reserve(32);
  // Integers up to 2^53 print as integers. Larger magnitudes print in
  // exponent form, so that decode gives back a number, not an int64 cdata.
  // Everything else takes the shortest text that reads back the same double.
  std::to_chars_result r;
  if (std::fabs(d) <= 9007199254740992.0) {
    if (d == std::trunc(d)) r = std::to_chars(p, p + 32, static_cast<int64_t>(d));
    else r = std::to_chars(p, p + 32, d);
  } else {
    r = std::to_chars(p, p + 32, d, std::chars_format::scientific);
  }
  out_.Commit(static_cast<size_t>(r.ptr - p));
  return true;
}

// Bytes are copied in spans between escapes; UTF-8 sequences are only
// validated. Invariant: the buffer has room for every byte of s not yet
// copied plus the closing quote; only an escape (up to 6 bytes for 1) must
// reserve more.
bool Encoder::String(const char* s, size_t n) {
  const auto* u = reinterpret_cast<const unsigned char*>(s);
  out_.Reserve(n + 2);
  out_.PutReserved('"');
  size_t i = 0, span = 0;  // s[span, i) is checked but not yet copied
  for (;;) {
    i += SkipPlain(u + i, u + n);
    if (i == n) break;
    const char cls = kEscape.cls[u[i]];
    if (cls == 1) {
      const size_t len = Utf8Length(u + i, n - i);
      if (len == 0) return Fail("invalid UTF-8 in string (byte " + std::to_string(i + 1) + ")");
      i += len;
      continue;
    }
    out_.PutReserved(s + span, i - span);
    char* p = out_.Reserve(n - i + 8);
    p[0] = '\\';
    p[1] = cls;
    if (cls != 'u') {
      out_.Commit(2);
    } else {
      static const char kHex[] = "0123456789abcdef";
      p[2] = '0';
      p[3] = '0';
      p[4] = kHex[u[i] >> 4];
      p[5] = kHex[u[i] & 15];
      out_.Commit(6);
    }
    span = ++i;
  }
  out_.PutReserved(s + span, n - span);
  out_.PutReserved('"');
  return true;
}

bool Encoder::Cdata(int idx) {
  // Only the FFI can look inside cdata, so a small Lua helper turns int64 /
  // uint64 into decimal text and other numeric cdata into a number.
  lua_pushvalue(L_, kCdataFn);
  lua_pushvalue(L_, idx);
  if (lua_pcall(L_, 1, 1, 0) != 0) {
    const char* m = lua_tostring(L_, -1);
    return Fail(std::string("cannot encode cdata: ") + (m ? m : "error"));
  }
  bool ok = true;
  if (lua_type(L_, -1) == LUA_TSTRING) {
    size_t n;
    const char* s = lua_tolstring(L_, -1, &n);
    out_.Put(s, n);
  } else if (lua_type(L_, -1) == LUA_TNUMBER) {
    ok = Number(lua_tonumber(L_, -1));
  } else {
    ok = Fail("cannot encode cdata other than integers and numbers");
  }
  lua_pop(L_, 1);
  return ok;
}

// A table is an array when it carries the array marker, or when it has no
// marker and its keys are exactly 1..n with n > 0. *n gets the length.
bool Encoder::IsArray(int idx, size_t* n) {
  if (lua_getmetatable(L_, idx)) {
    const bool array = lua_rawequal(L_, -1, kArrayMt);
    const bool object = lua_rawequal(L_, -1, kObjectMt);
    lua_pop(L_, 1);
    if (array) *n = lua_objlen(L_, idx);
    if (array || object) return array;
  }
  double count = 0, max = 0;
  lua_pushnil(L_);
  while (lua_next(L_, idx)) {
    lua_pop(L_, 1);  // stack: key
    const double k = lua_type(L_, -1) == LUA_TNUMBER ? lua_tonumber(L_, -1) : 0;
    if (!(k >= 1 && k == std::floor(k))) {
      lua_pop(L_, 1);
      return false;
    }
    count += 1;
    max = std::max(max, k);
  }
  *n = static_cast<size_t>(count);
  return count > 0 && max == count;
}

bool Encoder::Table(int idx, int depth) {
  if (depth >= kMaxDepth) return Fail("nesting deeper than " + std::to_string(kMaxDepth));
  const void* self = lua_topointer(L_, idx);
  if (std::find(open_.begin(), open_.end(), self) != open_.end()) {
    return Fail("cycle detected: a table contains itself");
  }
  if (!lua_checkstack(L_, 8)) return Fail("Lua stack overflow");
  size_t n = 0;
  const bool array = IsArray(idx, &n);
  open_.push_back(self);
  const bool ok = array ? Array(idx, n, depth) : sort_ ? SortedObject(idx, depth) : Object(idx, depth);
  open_.pop_back();
  return ok;
}

bool Encoder::Array(int idx, size_t n, int depth) {
  if (n == 0) {
    out_.Put("[]", 2);
    return true;
  }
  out_.Put('[');
  for (size_t i = 1; i <= n; ++i) {
    if (i > 1) out_.Put(',');
    if (pretty_) Newline(depth + 1);
    lua_rawgeti(L_, idx, static_cast<int>(i));
    if (!Value(lua_gettop(L_), depth + 1)) return false;
    lua_pop(L_, 1);
  }
  if (pretty_) Newline(depth);
  out_.Put(']');
  return true;
}

// Writes an object key followed by the colon. Numbers become the text
// tostring() gives them (as lua-cjson does); other key types are errors.
bool Encoder::Key(int idx) {
  const int type = lua_type(L_, idx);
  if (type != LUA_TSTRING && type != LUA_TNUMBER) {
    return Fail(std::string("object key must be a string or a number, got ") + lua_typename(L_, type));
  }
  lua_pushvalue(L_, idx);  // a copy: converting the key itself would upset lua_next
  size_t n;
  const char* s = lua_tolstring(L_, -1, &n);
  const bool ok = String(s, n);
  lua_pop(L_, 1);
  if (pretty_) out_.Put(": ", 2);
  else out_.Put(':');
  return ok;
}

bool Encoder::Object(int idx, int depth) {
  out_.Put('{');
  bool first = true;
  lua_pushnil(L_);
  while (lua_next(L_, idx)) {  // stack: key, value
    const int top = lua_gettop(L_);
    if (!first) out_.Put(',');
    first = false;
    if (pretty_) Newline(depth + 1);
    if (!Key(top - 1) || !Value(top, depth + 1)) return false;
    lua_pop(L_, 1);
  }
  if (!first && pretty_) Newline(depth);
  out_.Put('}');
  return true;
}

// Same output as Object() with the members in byte order of their keys. The
// values (and number keys turned into strings) wait in the scratch table, which
// also keeps every key string alive while entries_ points into it.
bool Encoder::SortedObject(int idx, int depth) {
  const size_t first = entries_.size();
  const int base = scratch_top_;
  lua_pushnil(L_);
  while (lua_next(L_, idx)) {  // stack: key, value
    const int type = lua_type(L_, -2);
    if (type != LUA_TSTRING && type != LUA_TNUMBER) {
      return Fail(std::string("object key must be a string or a number, got ") + lua_typename(L_, type));
    }
    const int slot = scratch_top_ + 2;
    lua_rawseti(L_, kScratch, slot);  // pops the value
    lua_pushvalue(L_, -1);
    size_t n;
    const char* s = lua_tolstring(L_, -1, &n);
    lua_rawseti(L_, kScratch, slot - 1);
    entries_.push_back({s, n, slot});
    scratch_top_ = slot;
  }
  std::sort(entries_.begin() + static_cast<std::ptrdiff_t>(first), entries_.end(),
            [](const Entry& a, const Entry& b) {
              const int c = std::memcmp(a.key, b.key, std::min(a.len, b.len));
              return c != 0 ? c < 0 : a.len < b.len;
            });
  out_.Put('{');
  const size_t end = entries_.size();
  for (size_t i = first; i < end; ++i) {
    const Entry e = entries_[i];  // a copy: nested objects may grow entries_
    if (i > first) out_.Put(',');
    if (pretty_) Newline(depth + 1);
    if (!String(e.key, e.len)) return false;
    if (pretty_) out_.Put(": ", 2);
    else out_.Put(':');
    lua_rawgeti(L_, kScratch, e.slot);
    if (!Value(lua_gettop(L_), depth + 1)) return false;
    lua_pop(L_, 1);
  }
  if (end > first && pretty_) Newline(depth);
  out_.Put('}');
  entries_.resize(first);
  scratch_top_ = base;
  return true;
}

}  // namespace

int Encode(lua_State* L) {
  luaL_checkany(L, 1);
  bool pretty = false, sort = false;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "pretty");
    pretty = lua_toboolean(L, -1);
    lua_getfield(L, 2, "sort_keys");
    sort = lua_isnil(L, -1) ? pretty : lua_toboolean(L, -1);
  }
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));  // kArrayMt
  lua_pushvalue(L, lua_upvalueindex(2));  // kObjectMt
  lua_pushvalue(L, lua_upvalueindex(3));  // kCdataFn
  if (sort) lua_newtable(L);              // kScratch
  bool ok;
  {
    auto* cache = static_cast<BufferCache*>(lua_touserdata(L, lua_upvalueindex(4)));
    Encoder enc(L, cache, pretty, sort);
    ok = enc.Run(1);
    if (ok) lua_pushlstring(L, enc.out().data(), enc.out().size());
    else lua_pushlstring(L, enc.error().data(), enc.error().size());
  }
  if (!ok) return lua_error(L);  // raised after the encoder is destroyed
  return 1;
}

}  // namespace luasync::json
