// luasync.json on a bare lua_State: exact outputs and exact error messages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

extern "C" {
#include <lauxlib.h>
#include <lualib.h>
}

#include "lua/mod_json.h"

namespace {

// A fresh state with the standard libraries (ffi included) and the global
// json. Run() returns what the chunk returns, as a string, or "error: <msg>".
class Lua {
 public:
  Lua() : L(luaL_newstate()) {
    luaL_openlibs(L);
    luasync::luaopen_luasync_json(L);
    lua_setglobal(L, "json");
  }
  ~Lua() {
    luasync::json::SetFastPath(true);
    lua_close(L);
  }
  Lua(const Lua&) = delete;
  Lua& operator=(const Lua&) = delete;

  std::string Run(const std::string& code) {
    if (luaL_loadbuffer(L, code.data(), code.size(), "=test") != 0) return Pop("compile error: ");
    if (lua_pcall(L, 0, 1, 0) != 0) return Pop("error: ");
    if (lua_type(L, -1) != LUA_TSTRING) {  // tostring() it
      lua_getglobal(L, "tostring");
      lua_insert(L, -2);
      lua_call(L, 1, 1);
    }
    return Pop("");
  }

  lua_State* L;

 private:
  std::string Pop(const char* prefix) {
    size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    std::string out = prefix + std::string(s ? s : "(non-string error)", s ? n : 18);
    lua_pop(L, 1);
    return out;
  }
};

// Lua source for a long-bracket string literal holding s exactly.
std::string LuaLiteral(const std::string& s) {
  std::string out = "\"";
  char buf[8];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "\\%03u", c);
    out += buf;
  }
  return out + "\"";
}

std::string Decode(Lua& lua, const std::string& text) {
  return lua.Run("return json.encode(json.decode(" + LuaLiteral(text) + "), {sort_keys = true})");
}

}  // namespace

TEST_CASE("json: scalars and containers round-trip", "[json]") {
  Lua lua;
  CHECK(Decode(lua, "[1,2.5,-3,true,false,null,\"x\"]") == "[1,2.5,-3,true,false,null,\"x\"]");
  CHECK(Decode(lua, R"({"b":{"c":[{}]},"a":[]})") == R"({"a":[],"b":{"c":[{}]}})");
  CHECK(Decode(lua, " \t\r\n[ 1 , { \"k\" : \"v\" } ]\n") == R"([1,{"k":"v"}])");
  CHECK(Decode(lua, "\"top\"") == "\"top\"");
  CHECK(Decode(lua, "42") == "42");
  CHECK(Decode(lua, "\xEF\xBB\xBF[1]") == "[1]");  // a UTF-8 BOM is skipped
  CHECK(lua.Run("return json.encode(nil)") == "null");
  CHECK(lua.Run("return json.encode('') .. json.encode(true)") == "\"\"true");
}

TEST_CASE("json: empty array and object round-trip through markers", "[json]") {
  Lua lua;
  CHECK(Decode(lua, "[]") == "[]");
  CHECK(Decode(lua, "{}") == "{}");
  CHECK(Decode(lua, R"({"a":[],"b":{},"c":[[]]})") == R"({"a":[],"b":{},"c":[[]]})");
  CHECK(lua.Run("return getmetatable(json.decode('[]')).__jsontype") == "array");
  CHECK(lua.Run("return getmetatable(json.decode('{}')).__jsontype") == "object");
  CHECK(lua.Run("return json.encode({})") == "{}");
  CHECK(lua.Run("return json.encode(json.array({}))") == "[]");
  CHECK(lua.Run("return json.encode(json.array())") == "[]");
  CHECK(lua.Run("return json.encode(json.object({1, 2}))") == R"({"1":1,"2":2})");
  CHECK(lua.Run("local t = {} return json.array(t) == t") == "true");
  CHECK(lua.Run("return json.encode({json.object(), json.array()})") == "[{},[]]");
}

TEST_CASE("json: table shapes and keys", "[json]") {
  Lua lua;
  CHECK(lua.Run("return json.encode({1, 2, 3})") == "[1,2,3]");
  CHECK(lua.Run("return json.encode({1, nil, 3}, {sort_keys = true})") == R"({"1":1,"3":3})");
  CHECK(lua.Run("return json.encode({[1] = 'a', [2] = 'b', x = 1}, {sort_keys = true})") ==
        R"({"1":"a","2":"b","x":1})");
  CHECK(lua.Run("return json.encode({[2] = 'b'})") == R"({"2":"b"})");
  CHECK(lua.Run("return json.encode({[1.5] = 'x', [-1] = 'y'}, {sort_keys = true})") == R"({"-1":"y","1.5":"x"})");
  CHECK(lua.Run("local t = json.array({1, 2, x = 3}) return json.encode(t)") == "[1,2]");
  CHECK(lua.Run("local t = json.decode('[1,2]') t[3] = 3 return json.encode(t)") == "[1,2,3]");
  CHECK(lua.Run("return json.encode(setmetatable({5}, {}))") == "[5]");
}

TEST_CASE("json: strings, escapes and unicode", "[json]") {
  Lua lua;
  // Every escape JSON has, decoded to the bytes it stands for.
  CHECK(lua.Run(R"(return table.concat({string.byte(json.decode([["\"\\\/\b\f\n\r\t\u0001\u001f\u0000"]]), 1, -1)}, ","))") ==
        "34,92,47,8,12,10,13,9,1,31,0");
  // \u escapes become UTF-8, surrogate pairs included; upper and lower hex.
  CHECK(Decode(lua, R"("\u00e9\u4E2D\ud83d\ude00")") == "\"\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\"");
  CHECK(lua.Run(R"(return #json.decode([["\ud83d\ude00"]]))") == "4");
  // Raw UTF-8 passes through unescaped; / is not escaped.
  CHECK(Decode(lua, "\"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x9A\x80 a/b\"") == "\"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x9A\x80 a/b\"");
  // Encoding: short escapes where JSON has them, \u00XX for the other controls.
  CHECK(lua.Run(R"(local t = {} for i = 0, 31 do t[#t + 1] = string.char(i) end
                   return json.encode(table.concat(t) .. '"\\/' .. string.char(127)))") ==
        R"("\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f)"
        R"(\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\"\\/)"
        "\x7F\"");
  CHECK(lua.Run(R"(return json.decode(json.encode("a\0b\r\n\"\\")) == "a\0b\r\n\"\\")") == "true");
}

TEST_CASE("json: long strings and many strings cross the splitter's windows", "[json]") {
  Lua lua;
  CHECK(lua.Run(R"(
    local parts = {}
    for i = 1, 20000 do parts[i] = "s" .. i .. (i % 3 == 0 and "\n\"q\"" or "") .. (i % 7 == 0 and "\u{e9}" or "") end
    local big = string.rep("x\\y\n\u{1F600}", 30000)
    local v = {parts, {big = big}, big}
    local text = json.encode(v)
    local back = json.decode(text)
    for i = 1, #parts do assert(back[1][i] == parts[i], i) end
    assert(back[2].big == big and back[3] == big)
    return json.encode(back) == text
  )") == "true");
}

TEST_CASE("json: numbers", "[json]") {
  Lua lua;
  CHECK(lua.Run("return json.encode(1e15)") == "1000000000000000");
  CHECK(lua.Run("return json.encode(2^53)") == "9007199254740992");
  CHECK(lua.Run("return json.encode(2^53 + 2)") == "9.007199254740994e+15");
  CHECK(lua.Run("return json.encode(-0.0)") == "0");
  CHECK(lua.Run("return json.encode(0.1)") == "0.1");
  CHECK(lua.Run("return json.encode(1/3)") == "0.3333333333333333");
  CHECK(lua.Run("return json.encode(-1.5e300)") == "-1.5e+300");
  CHECK(lua.Run("return json.encode(5e-324)") == "5e-324");
  CHECK(lua.Run("return json.encode(123.456)") == "123.456");
  CHECK(lua.Run(R"(for _, x in ipairs({0.1, 1/3, 2^-1074, 1.7976931348623157e308, -2.5e-8, 12345.678})
                   do assert(json.decode(json.encode(x)) == x, x) end return "ok")") == "ok");
  CHECK(Decode(lua, "[0, -0, 1E2, 1e-2, -1.25e+3, 0.5]") == "[0,0,100,0.01,-1250,0.5]");
  CHECK(lua.Run("return type(json.decode('12'))") == "number");
  CHECK(Decode(lua, "123456789012345678901234567890") == "1.2345678901234568e+29");
}

TEST_CASE("json: integers beyond 2^53 are 64-bit cdata", "[json]") {
  Lua lua;
  CHECK(lua.Run("return tostring(json.decode('9223372036854775807'))") == "9223372036854775807LL");
  CHECK(lua.Run("return tostring(json.decode('-9223372036854775808'))") == "-9223372036854775808LL");
  CHECK(lua.Run("return tostring(json.decode('18446744073709551615'))") == "18446744073709551615ULL");
  CHECK(lua.Run("return tostring(json.decode('9223372036854775808'))") == "9223372036854775808ULL");
  CHECK(lua.Run("return tostring(json.decode('9007199254740993'))") == "9007199254740993LL");
  CHECK(lua.Run("return tostring(json.decode('-9007199254740993'))") == "-9007199254740993LL");
  CHECK(lua.Run("return type(json.decode('9007199254740992'))") == "number");
  CHECK(lua.Run("return type(json.decode('-9007199254740992'))") == "number");
  CHECK(Decode(lua, "[9223372036854775807,-9223372036854775808,18446744073709551615,9007199254740993]") ==
        "[9223372036854775807,-9223372036854775808,18446744073709551615,9007199254740993]");
  CHECK(lua.Run("return json.encode({-5LL, 7ULL, 0LL})") == "[-5,7,0]");
  CHECK(lua.Run("return json.encode(require('ffi').new('int32_t', -7))") == "-7");
  CHECK(lua.Run("return json.encode(require('ffi').new('double', 0.5))") == "0.5");
}

TEST_CASE("json: null", "[json]") {
  Lua lua;
  CHECK(lua.Run("return json.decode('null') == json.null") == "true");
  CHECK(lua.Run("return json.decode('[null]')[1] == json.null") == "true");
  CHECK(lua.Run("return json.decode('{\"a\":null}').a == json.null") == "true");
  CHECK(lua.Run("return type(json.null)") == "userdata");
  CHECK(lua.Run("return json.encode({json.null, 1})") == "[null,1]");
  CHECK(lua.Run("return json.encode(json.array({nil, 2}))") == "[null,2]");
}

TEST_CASE("json: invalid input names the byte offset", "[json]") {
  Lua lua;
  const char* prefix = "error: json.decode: ";
  auto err = [&](const std::string& text) {
    const std::string r = Decode(lua, text);
    return r.rfind(prefix, 0) == 0 ? r.substr(std::strlen(prefix)) : "NO ERROR: " + r;
  };
  CHECK(err("[1,2,x]") == "unexpected character 'x' at byte 6");
  CHECK(err("[1,2") == "unexpected end of input at byte 5 (expected ']')");
  CHECK(err("") == "unexpected end of input at byte 1 (expected a value)");
  CHECK(err("   ") == "unexpected end of input at byte 4 (expected a value)");
  CHECK(err(R"({"a" "b"})") == "unexpected string at byte 6 (expected ':')");
  CHECK(err("[1,]") == "unexpected ']' at byte 4 (expected a value)");
  CHECK(err(R"({"a":1,})") == "unexpected '}' at byte 8 (expected string)");
  CHECK(err("{1:2}") == "unexpected number at byte 2 (expected string)");
  CHECK(err(R"({"a":1 "b":2})") == "unexpected string at byte 8 (expected '}')");
  CHECK(err("[true false]") == "unexpected 'false' at byte 7 (expected ']')");
  CHECK(err("[null null]") == "unexpected 'null' at byte 7 (expected ']')");
  CHECK(err("tru") == "unexpected end of input at byte 4");
  CHECK(err("nul1") == "unexpected character '1' at byte 4");
  CHECK(err("[\x01]") == "unexpected byte 0x01 at byte 2");
  CHECK(err("\"abc") == "invalid string: missing closing quote at byte 5");
  CHECK(err("\"a\nb\"") ==
        "invalid string: control character U+000A (LF) must be escaped to \\u000A or \\n at byte 3");
  CHECK(err("[\"\xFF\"]") == "invalid string: ill-formed UTF-8 byte at byte 3");
  CHECK(err("\"\xED\xA0\x80\"") == "invalid string: ill-formed UTF-8 byte at byte 3");  // encoded surrogate
  CHECK(err("\"\xC0\xAF\"") == "invalid string: ill-formed UTF-8 byte at byte 2");      // overlong
  CHECK(err(R"("\x")") == "invalid string: forbidden character after backslash at byte 3");
  CHECK(err(R"("\u12G4")") == "invalid string: '\\u' must be followed by 4 hex digits at byte 6");
  CHECK(err(R"("\ud800")") ==
        "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF at byte 8");
  CHECK(err(R"("\udc00")") == "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF at byte 7");
  CHECK(err("-") == "invalid number; expected digit after '-' at byte 2");
  CHECK(err("01") == "unexpected number at byte 2 (expected end of input)");
  CHECK(err("1.5e") == "invalid number; expected '+', '-', or digit after exponent at byte 5");
  CHECK(err("[1e400]") == "number out of range at byte 2");
  CHECK(err("[1] x") == "unexpected character 'x' at byte 5 (expected end of input)");
  CHECK(err("[1] 2") == "unexpected number at byte 5 (expected end of input)");
  CHECK(err("{} {}") == "unexpected '{' at byte 4 (expected end of input)");
  CHECK(err(std::string("[1]\0", 4)) == "unexpected byte 0x00 at byte 4 (expected end of input)");
  CHECK(err(std::string("[\"a\0\"]", 6)) ==
        "invalid string: control character U+0000 (NUL) must be escaped to \\u0000 at byte 4");
  CHECK(lua.Run("return json.decode({})").find("bad argument #1") != std::string::npos);
  CHECK(lua.Run("return json.decode({})").find("string expected, got table") != std::string::npos);
}

TEST_CASE("json: nesting limit", "[json]") {
  Lua lua;
  CHECK(lua.Run("return json.decode(string.rep('[', 10000) .. string.rep(']', 10000))") ==
        "error: json.decode: nesting deeper than 1000 at byte 1001");
  CHECK(lua.Run("return json.decode(string.rep('{\"a\":', 1001) .. '1' .. string.rep('}', 1001))") ==
        "error: json.decode: nesting deeper than 1000 at byte 5001");
  CHECK(lua.Run("return json.decode(string.rep('[\"[\",', 1001))") ==
        "error: json.decode: nesting deeper than 1000 at byte 5001");
  CHECK(lua.Run("local s = string.rep('[', 1000) .. string.rep(']', 1000) "
                "return json.encode(json.decode(s)) == s") == "true");
  CHECK(lua.Run("local t = {} local c = t for i = 1, 999 do c[1] = {} c = c[1] end "
                "return #json.encode(t)") == "2000");
  CHECK(lua.Run("local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end "
                "return json.encode(t)") == "error: json.encode: nesting deeper than 1000");
}

TEST_CASE("json: encode errors", "[json]") {
  Lua lua;
  CHECK(lua.Run("local t = {} t.self = t return json.encode(t)") ==
        "error: json.encode: cycle detected: a table contains itself");
  CHECK(lua.Run("local t = {} return json.encode({t, {t}})") == "[{},[{}]]");  // shared, not a cycle
  CHECK(lua.Run("return json.encode({[true] = 1})") ==
        "error: json.encode: object key must be a string or a number, got boolean");
  CHECK(lua.Run("return json.encode({[{}] = 1}, {sort_keys = true})") ==
        "error: json.encode: object key must be a string or a number, got table");
  CHECK(lua.Run("return json.encode({0/0})") == "error: json.encode: cannot encode NaN");
  CHECK(lua.Run("return json.encode(math.huge)") == "error: json.encode: cannot encode inf");
  CHECK(lua.Run("return json.encode(-math.huge)") == "error: json.encode: cannot encode -inf");
  CHECK(lua.Run("return json.encode({f = print})") == "error: json.encode: cannot encode a value of type function");
  CHECK(lua.Run("return json.encode(coroutine.create(print))") ==
        "error: json.encode: cannot encode a value of type thread");
  CHECK(lua.Run("return json.encode(require('ffi').cast('void *', 1))") ==
        "error: json.encode: cannot encode cdata other than integers and numbers");
  CHECK(lua.Run("return json.encode('ab\\255')") == "error: json.encode: invalid UTF-8 in string (byte 3)");
  CHECK(lua.Run("return json.encode('\\237\\160\\128')") == "error: json.encode: invalid UTF-8 in string (byte 1)");
  CHECK(lua.Run("return json.encode(1, 2)").rfind("error: bad argument #2", 0) == 0);
  CHECK(lua.Run("return json.encode()").rfind("error: bad argument #1", 0) == 0);
}

TEST_CASE("json: pretty output", "[json]") {
  Lua lua;
  CHECK(lua.Run(R"(return json.encode({name = "x", list = {1, {a = true}, {}}, empty = json.array(), n = json.null},
                                       {pretty = true}))") ==
        "{\n"
        "  \"empty\": [],\n"
        "  \"list\": [\n"
        "    1,\n"
        "    {\n"
        "      \"a\": true\n"
        "    },\n"
        "    {}\n"
        "  ],\n"
        "  \"n\": null,\n"
        "  \"name\": \"x\"\n"
        "}");
  CHECK(lua.Run("return json.encode({}, {pretty = true})") == "{}");
  CHECK(lua.Run("return json.encode({1}, {pretty = true})") == "[\n  1\n]");
  CHECK(lua.Run("return json.encode('s', {pretty = true})") == "\"s\"");
  CHECK(lua.Run("return json.encode({b = 1, a = 2, [3] = 0}, {sort_keys = true})") == R"({"3":0,"a":2,"b":1})");
}

// The fast path (json_split.h) must accept exactly what nlohmann accepts and
// produce the same values. Random literals built from troublesome pieces are
// decoded both ways and compared.
TEST_CASE("json: string fast path agrees with nlohmann's lexer", "[json]") {
  static const char* const kPieces[] = {
      "a", "Z", " ", "/", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041", "\\u00e9",
      "\\u4e2D", "\\ud83d\\ude00", "\\ud83d", "\\ude00", "\\ud83dx", "\\u12", "\\x", "\\", "\"", "\x01",
      "\x1f", "\x7f", "" /* NUL */, "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "\x80",
      "\xC0\xAF", "\xC2", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5", "\xFF", "12345678"};
  std::mt19937 rng(1234);
  Lua lua;
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string lit;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      const size_t k = rng() % (sizeof kPieces / sizeof kPieces[0]);
      lit += (std::strcmp(kPieces[k], "") == 0) ? std::string("\0", 1) : std::string(kPieces[k]);
    }
    const std::string text = "[\"" + lit + "\",{\"" + lit + "\":\"" + std::string(40, 'p') + lit + "\"}]";
    luasync::json::SetFastPath(true);
    const std::string fast = Decode(lua, text);
    luasync::json::SetFastPath(false);
    const std::string slow = Decode(lua, text);
    INFO("input: " << text);
    REQUIRE(fast == slow);
    ++(fast.rfind("error: ", 0) == 0 ? rejected : accepted);
  }
  luasync::json::SetFastPath(true);
  CHECK(accepted > 400);  // both outcomes are well represented
  CHECK(rejected > 400);
}

TEST_CASE("json: number fast path agrees with nlohmann's lexer", "[json]") {
  static const char* const kPieces[] = {"-", "+", "0", "1", "7", "9", ".", "e", "E", "00", "5e-324", "1e-400",
                                        "1e400", "9223372036854775807", "9223372036854775808",
                                        "18446744073709551615", "18446744073709551616", "123456789012345678901",
                                        "0.1", "2.2250738585072014e-308", "4.9406564584124654e-324", "x", " "};
  static const char* const kContexts[] = {"@", "[@]", "[@,1]", "[1,@]", "{\"k\":@}", "[@ ]", "[@\n,2]", "[@1]",
                                          "[@true]", "[@\"s\"]", "[@null,@]"};
  std::mt19937 rng(4321);
  Lua lua;
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string num;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) num += kPieces[rng() % (sizeof kPieces / sizeof kPieces[0])];
    std::string text = kContexts[rng() % (sizeof kContexts / sizeof kContexts[0])];
    for (size_t at; (at = text.find('@')) != std::string::npos;) text.replace(at, 1, num);
    const std::string code = "local v = json.decode(" + LuaLiteral(text) +
                             ") return json.encode(v) .. (type(v) == 'cdata' and tostring(v) or '')";
    luasync::json::SetFastPath(true);
    const std::string fast = lua.Run(code);
    luasync::json::SetFastPath(false);
    const std::string slow = lua.Run(code);
    INFO("input: " << text);
    REQUIRE(fast == slow);
    ++(fast.rfind("error: ", 0) == 0 ? rejected : accepted);
  }
  luasync::json::SetFastPath(true);
  CHECK(accepted > 400);
  CHECK(rejected > 400);
}
