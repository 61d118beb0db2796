// luasync.json: the module table, and json.decode on nlohmann_json's SAX
// interface, which builds Lua values directly on the Lua stack (no DOM).
// json.encode lives in json_encode.cpp. This is the only file that includes
// <nlohmann/json.hpp>.
#include "lua/mod_json.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

extern "C" {
#include <lauxlib.h>
}

#include "lua/json_encode.h"
#include "lua/json_split.h"
#include "lua/module.h"

namespace luasync {
namespace json {
namespace {

using Json = nlohmann::json;

// Fixed stack slots Decode() sets up; values are built above them.
constexpr int kArrayMt = 2;
constexpr int kObjectMt = 3;
constexpr int kMakeInt64 = 4;

// Only the FFI can make or read 64-bit integer cdata, so this small chunk does
// it for the C++ side: make() for decode, text() for encode.
constexpr char kFfiHelpers[] = R"lua(
local ffi = require("ffi")
local int64, uint64 = ffi.typeof("int64_t"), ffi.typeof("uint64_t")
local istype, tostring, tonumber = ffi.istype, tostring, tonumber
local function make(hi, lo, unsigned)  -- hi * 2^32 + lo, wrapping like C
  return (unsigned and uint64 or int64)(hi) * 4294967296 + lo
end
local function text(v)  -- decimal digits, a plain number, or nil
  if istype(int64, v) then return (tostring(v):sub(1, -3)) end   -- "5LL"
  if istype(uint64, v) then return (tostring(v):sub(1, -4)) end  -- "5ULL"
  return tonumber(v)
end
return make, text
)lua";

template <lua_CFunction Fn>
int Guarded(lua_State* L) {
  try {
    return Fn(L);
  } catch (const std::exception& e) {  // never catch(...): LuaJIT errors unwind through here
    lua_pushfstring(L, "json: %s", e.what());
  }
  return lua_error(L);  // raised after the handler has finished
}

// 1-based offset of the bracket that opens nesting level kMaxDepth + 1. Only
// called once the parser has accepted everything before it, so a plain scan
// that skips strings is exact.
size_t NestingOffset(const char* s, size_t n) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return i + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return n + 1;
}

// nlohmann's token names, as users would say them.
std::string TokenName(const std::string& t) {
  if (t == "string literal") return "string";
  if (t == "number literal") return "number";
  if (t == "true literal") return "'true'";
  if (t == "false literal") return "'false'";
  if (t == "null literal") return "'null'";
  if (t == "'[', '{', or a literal") return "a value";
  return t;
}

// SAX handler. Each value is pushed on the Lua stack, then stored into the
// container below it; containers stay on the stack until closed. Errors are
// recorded and the handler returns false: raising a Lua error from inside the
// parser would unwind through nlohmann's frames.
//
// With a LiteralSplitter the parser reads its skeleton, and each string or
// null token stands for the splitter's next literal. Errors then carry no
// message: the caller parses the original text again to report them.
class Decoder {
 public:
  Decoder(lua_State* L, const char* s, size_t n, LiteralSplitter* literals)
      : L_(L), input_(s), len_(n), literals_(literals), frames_(kInitialFrames) {}

  bool null() {
    if (literals_) return NextScalar();
    lua_pushlightuserdata(L_, nullptr);  // json.null
    return Add();
  }
  bool boolean(bool b) {
    lua_pushboolean(L_, b);
    return Add();
  }
  // With a splitter, numbers come as nulls (so a number token cannot happen).
  bool number_integer(Json::number_integer_t v) { return !literals_ && Integer(v) && Add(); }
  bool number_unsigned(Json::number_unsigned_t v) { return !literals_ && Unsigned(v) && Add(); }
  bool number_float(Json::number_float_t v, const Json::string_t&) {
    if (literals_) return false;
    lua_pushnumber(L_, v);
    return Add();
  }
  bool string(Json::string_t& s) { return PushString(s) && Add(); }
  bool binary(Json::binary_t&) { return false; }  // JSON text never has binary values
  bool key(Json::string_t& s) { return PushString(s); }
  bool start_object(size_t) { return Open(true); }
  bool end_object() { return Close(); }
  bool start_array(size_t) { return Open(false); }
  bool end_array() { return Close(); }
  bool parse_error(size_t pos, const std::string& last, const nlohmann::detail::exception& ex);

  // After a successful parse: the lexer reads a NUL byte as end of input, so
  // "[1]\0junk" is accepted. A NUL can never appear in valid JSON text.
  bool CheckNoNul() {
    const void* z = std::memchr(input_, 0, len_);
    if (!z) return true;
    const size_t at = static_cast<size_t>(static_cast<const char*>(z) - input_) + 1;
    Fail(Unexpected(at) + " at byte " + std::to_string(at) + " (expected end of input)", 0);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  static constexpr int64_t kMaxExact = int64_t{1} << 53;  // larger integers become cdata

  static constexpr int kMaxHint = 64;

  static constexpr size_t kInitialFrames = 16;
  struct Frame {
    int count;    // values stored so far
    bool object;
    int last_array = 0, last_object = 0;  // sizes of the last ones closed at this depth
  };

  bool PushString(const Json::string_t& s) {
    if (!literals_) {
      lua_pushlstring(L_, s.data(), s.size());
      return true;
    }
    std::string_view v;
    if (!literals_->NextString(&v)) return false;  // cannot happen; parse the slow way
    lua_pushlstring(L_, v.data(), v.size());
    return true;
  }
  bool NextScalar() {
    LiteralSplitter::Scalar v;
    if (!literals_->NextScalar(&v)) return false;  // cannot happen; parse the slow way
    bool ok = true;
    switch (v.kind) {
      case LiteralSplitter::Scalar::kNull: lua_pushlightuserdata(L_, nullptr); break;
      case LiteralSplitter::Scalar::kUnsigned: ok = Unsigned(v.u); break;
      case LiteralSplitter::Scalar::kInteger: ok = Integer(v.i); break;
      case LiteralSplitter::Scalar::kFloat: lua_pushnumber(L_, v.d); break;
    }
    return ok && Add();
  }
  bool Integer(int64_t v) {
    if (v >= -kMaxExact && v <= kMaxExact) {
      lua_pushnumber(L_, static_cast<lua_Number>(v));
      return true;
    }
    return PushInt64(static_cast<uint64_t>(v), false);
  }
  bool Unsigned(uint64_t v) {
    if (v <= static_cast<uint64_t>(kMaxExact)) {
      lua_pushnumber(L_, static_cast<lua_Number>(v));
      return true;
    }
    return PushInt64(v, v > static_cast<uint64_t>(INT64_MAX));
  }
  bool Open(bool object) {
    if (depth_ == kMaxDepth) {
      if (literals_) return false;
      return Fail("nesting deeper than " + std::to_string(kMaxDepth), NestingOffset(input_, len_));
    }
    if (!lua_checkstack(L_, 8)) return Fail("Lua stack overflow", 0);
    // Frames grow with the depth reached: most documents are shallow, and
    // constructing kMaxDepth frames cost about 6k instructions per call.
    if (static_cast<size_t>(depth_) + 1 >= frames_.size()) {
      frames_.resize(std::min(frames_.size() * 2, static_cast<size_t>(kMaxDepth) + 1));
    }
    Frame& f = frames_[++depth_];
    f.count = 0;
    f.object = object;
    // Presize like the last container of the same kind at this depth: arrays
    // of similar objects are the common case. Capped, so an odd large one
    // does not make every later one large.
    const int hint = object ? f.last_object : f.last_array;
    lua_createtable(L_, object ? 0 : hint, object ? hint : 0);
    lua_pushvalue(L_, object ? kObjectMt : kArrayMt);
    lua_setmetatable(L_, -2);
    return true;
  }
  bool Close() {
    Frame& f = frames_[depth_--];
    const int hint = f.count < kMaxHint ? f.count : kMaxHint;
    if (f.object) f.last_object = hint;
    else f.last_array = hint;
    return Add();
  }
  // Stores the value on top into the open container (stack: ..., container, [key,] value).
  bool Add() {
    if (depth_ == 0) return true;
    Frame& f = frames_[depth_];
    if (f.object) lua_rawset(L_, -3);
    else lua_rawseti(L_, -2, ++f.count);
    return true;
  }
  bool PushInt64(uint64_t bits, bool is_unsigned) {
    lua_pushvalue(L_, kMakeInt64);
    const uint32_t hi = static_cast<uint32_t>(bits >> 32);
    lua_pushnumber(L_, is_unsigned ? static_cast<double>(hi) : static_cast<double>(static_cast<int32_t>(hi)));
    lua_pushnumber(L_, static_cast<double>(static_cast<uint32_t>(bits)));
    lua_pushboolean(L_, is_unsigned);
    if (lua_pcall(L_, 3, 1, 0) == 0) return true;
    const char* m = lua_tostring(L_, -1);
    return Fail(std::string("cannot make a 64-bit integer: ") + (m ? m : "error"), 0);
  }
  // "unexpected character 'x'" / "unexpected byte 0x80" / "unexpected end of input"
  std::string Unexpected(size_t at) const {
    if (at > len_) return "unexpected end of input";
    const unsigned char c = static_cast<unsigned char>(input_[at - 1]);
    char buf[40];
    if (c > 0x20 && c < 0x7f) std::snprintf(buf, sizeof buf, "unexpected character '%c'", c);
    else std::snprintf(buf, sizeof buf, "unexpected byte 0x%02X", c);
    return buf;
  }
  bool Fail(const std::string& why, size_t at) {
    error_ = "json.decode: " + why;
    if (at > 0) error_ += " at byte " + std::to_string(at);
    return false;
  }

  lua_State* L_;
  const char* input_;
  size_t len_;
  int depth_ = 0;
  LiteralSplitter* literals_;
  std::vector<Frame> frames_;  // frames_[1..depth_] are open
  std::string error_;
};

// nlohmann reports pos = 1-based offset of the last byte it read and a message
// "... - <lexer error>; last read: '<token>'[; expected <token>]" when the lexer
// failed, or "... - unexpected <token>[; expected <token>]" when a well-formed
// token came in the wrong place. Rebuild a short message naming the byte.
bool Decoder::parse_error(size_t pos, const std::string& last, const nlohmann::detail::exception& ex) {
  if (literals_) return false;  // positions are in the skeleton: parse again
  if (ex.id == 406) return Fail("number out of range", pos + 1 - std::min(pos, last.size()));
  const std::string what = ex.what();
  const size_t dash = what.find(" - ");
  std::string rest = dash == std::string::npos ? what : what.substr(dash + 3);
  std::string msg, expected;
  size_t at = pos;
  const std::string lexer_tail = "; last read: '" + last + "'";
  const size_t tail = rest.find(lexer_tail);
  if (tail != std::string::npos) {
    expected = rest.substr(tail + lexer_tail.size());
    msg = rest.substr(0, tail);
    if (msg == "invalid literal") msg = Unexpected(pos);
  } else {
    const size_t semi = rest.find("; expected ");
    if (semi != std::string::npos) expected = rest.substr(semi);
    const std::string tok = rest.substr(0, semi).substr(std::strlen("unexpected "));
    if (tok == "string literal" || tok == "number literal") at = pos + 1 - std::min(pos, last.size());
    else if (tok == "true literal" || tok == "null literal") at = pos - 3;
    else if (tok == "false literal") at = pos - 4;
    msg = tok == "end of input" ? Unexpected(pos) : "unexpected " + TokenName(tok);
  }
  if (expected.rfind("; expected ", 0) == 0) {
    expected = " (expected " + TokenName(expected.substr(std::strlen("; expected "))) + ")";
  }
  Fail(msg + " at byte " + std::to_string(at) + expected, 0);
  return false;
}

bool g_fast_path = true;

// json.decode(text) -> value; raises "json.decode: <what> at byte N".
int Decode(lua_State* L) {
  size_t len;
  const char* s = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));  // kArrayMt
  lua_pushvalue(L, lua_upvalueindex(2));  // kObjectMt
  lua_pushvalue(L, lua_upvalueindex(3));  // kMakeInt64
  bool ok = false;
  if (g_fast_path) {
    LiteralSplitter literals(s, len);
    Decoder d(L, s, len, &literals);
    ok = Json::sax_parse(literals.begin(), literals.end(), &d) && literals.Done();
  }
  if (ok) return 1;
  lua_settop(L, kMakeInt64);
  {
    Decoder d(L, s, len, nullptr);
    ok = Json::sax_parse(s, s + len, &d) && d.CheckNoNul();
    if (!ok) lua_pushlstring(L, d.error().data(), d.error().size());
  }
  if (!ok) return lua_error(L);  // raised after the decoder is destroyed
  return 1;
}

// json.array([t]) -> t, marked to encode as a JSON array (a new table if none).
// json.object([t]) -> t, marked to encode as a JSON object.
int MarkTable(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

void NewMarker(lua_State* L, const char* name, const char* kind) {
  luaL_newmetatable(L, name);  // shared by every copy of the module in this state
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "__jsontype");
}

// The encoder's reusable buffer lives in a global, not in a Lua userdata: all Lua
// runs on one thread, and a pointer kept only inside the Lua heap (which LuaJIT
// maps itself) is invisible to LeakSanitizer when a script ends with os.exit.
BufferCache g_buffer_cache{nullptr, 0};

void NewBufferCache(lua_State* L) { lua_pushlightuserdata(L, &g_buffer_cache); }

}  // namespace

void SetFastPath(bool on) { g_fast_path = on; }

}  // namespace json

int luaopen_luasync_json(lua_State* L) {
  lua_createtable(L, 0, 5);  // stack: M
  const int m = lua_gettop(L);
  json::NewMarker(L, "luasync.json.array", "array");    // m + 1
  json::NewMarker(L, "luasync.json.object", "object");  // m + 2
  if (luaL_loadbuffer(L, json::kFfiHelpers, sizeof json::kFfiHelpers - 1, "=luasync.json") != 0) {
    return lua_error(L);
  }
  lua_call(L, 0, 2);  // stack: M, array_mt, object_mt, make, text
  lua_pushvalue(L, m + 1);
  lua_pushvalue(L, m + 2);
  lua_pushvalue(L, m + 3);
  lua_pushcclosure(L, json::Guarded<json::Decode>, 3);
  lua_setfield(L, m, "decode");
  lua_pushvalue(L, m + 1);
  lua_pushvalue(L, m + 2);
  lua_pushvalue(L, m + 4);
  json::NewBufferCache(L);
  lua_pushcclosure(L, json::Guarded<json::Encode>, 4);
  lua_setfield(L, m, "encode");
  lua_pushvalue(L, m + 1);
  lua_pushcclosure(L, json::MarkTable, 1);
  lua_setfield(L, m, "array");
  lua_pushvalue(L, m + 2);
  lua_pushcclosure(L, json::MarkTable, 1);
  lua_setfield(L, m, "object");
  lua_pushlightuserdata(L, nullptr);  // the same value as cjson.null
  lua_setfield(L, m, "null");
  lua_settop(L, m);
  return 1;
}

LUASYNC_MODULE("luasync.json", luaopen_luasync_json);

}  // namespace luasync
