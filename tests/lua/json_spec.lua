-- luasync.json (API.md section 6): the same behaviours as tests/cpp/json_test.cpp,
-- through the real binary and the global json.

local function sorted(v) return json.encode(v, { sort_keys = true }) end

local function decode_error(text)
  local ok, err = pcall(json.decode, text)
  assert.falsy(ok)
  return err
end

describe("json.decode", function()
  it("decodes scalars and containers", function()
    assert.same({ 1, 2.5, -3, true, false, json.null, "x" }, json.decode('[1,2.5,-3,true,false,null,"x"]'))
    assert.same({ a = { b = { 1 } } }, json.decode(' {"a" : {"b": [1]}} '))
    assert.equals("top", json.decode('"top"'))
    assert.equals(42, json.decode("42"))
  end)

  it("decodes null to json.null", function()
    assert.equals(json.null, json.decode("null"))
    assert.equals(json.null, json.decode("[null]")[1])
    assert.equals(json.null, json.decode('{"a":null}').a)
    assert.equals("userdata", type(json.null))
  end)

  it("decodes every escape and \\u escapes with surrogate pairs", function()
    assert.equals('"\\/\b\f\n\r\t\1\31\0', json.decode([["\"\\\/\b\f\n\r\t\u0001\u001f\u0000"]]))
    assert.equals("\u{e9}\u{4e2d}\u{1F600}", json.decode([["\u00e9\u4E2D\ud83d\ude00"]]))
    assert.equals("caf\u{e9} \u{1F680} a/b", json.decode('"caf\u{e9} \u{1F680} a/b"'))
  end)

  it("marks arrays and objects so that empty ones round-trip", function()
    assert.equals("[]", json.encode(json.decode("[]")))
    assert.equals("{}", json.encode(json.decode("{}")))
    assert.equals('{"a":[],"b":{},"c":[[]]}', sorted(json.decode('{"c":[[]],"b":{},"a":[]}')))
    assert.equals("array", getmetatable(json.decode("[]")).__jsontype)
    assert.equals("object", getmetatable(json.decode("{}")).__jsontype)
  end)

  it("decodes integers beyond 2^53 to 64-bit cdata", function()
    assert.equals("9223372036854775807LL", tostring(json.decode("9223372036854775807")))
    assert.equals("-9223372036854775808LL", tostring(json.decode("-9223372036854775808")))
    assert.equals("18446744073709551615ULL", tostring(json.decode("18446744073709551615")))
    assert.equals("9007199254740993LL", tostring(json.decode("9007199254740993")))
    assert.equals("number", type(json.decode("9007199254740992")))
    local text = "[9223372036854775807,-9223372036854775808,18446744073709551615,9007199254740993]"
    assert.equals(text, json.encode(json.decode(text)))
  end)

  it("names the byte offset of invalid input", function()
    assert.equals("json.decode: unexpected character 'x' at byte 6", decode_error("[1,2,x]"))
    assert.equals("json.decode: unexpected end of input at byte 5 (expected ']')", decode_error("[1,2"))
    assert.equals("json.decode: unexpected end of input at byte 1 (expected a value)", decode_error(""))
    assert.equals("json.decode: unexpected string at byte 6 (expected ':')", decode_error('{"a" "b"}'))
    assert.equals("json.decode: unexpected ']' at byte 4 (expected a value)", decode_error("[1,]"))
    assert.equals("json.decode: unexpected '}' at byte 8 (expected string)", decode_error('{"a":1,}'))
    assert.equals("json.decode: invalid string: missing closing quote at byte 5", decode_error('"abc'))
    assert.equals("json.decode: invalid string: ill-formed UTF-8 byte at byte 3", decode_error('["\255"]'))
    assert.equals("json.decode: invalid string: forbidden character after backslash at byte 3",
      decode_error([["\x"]]))
    assert.equals("json.decode: invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF at byte 8",
      decode_error([["\ud800"]]))
    assert.equals("json.decode: invalid number; expected digit after '-' at byte 2", decode_error("-"))
    assert.equals("json.decode: number out of range at byte 2", decode_error("[1e400]"))
  end)

  it("rejects trailing garbage", function()
    assert.equals("json.decode: unexpected character 'x' at byte 5 (expected end of input)", decode_error("[1] x"))
    assert.equals("json.decode: unexpected number at byte 5 (expected end of input)", decode_error("[1] 2"))
    assert.equals("json.decode: unexpected '{' at byte 4 (expected end of input)", decode_error("{} {}"))
    assert.equals("json.decode: unexpected byte 0x00 at byte 4 (expected end of input)", decode_error("[1]\0"))
  end)

  it("limits nesting to 1000 levels", function()
    assert.has_error(function() json.decode(string.rep("[", 10000) .. string.rep("]", 10000)) end,
      "json.decode: nesting deeper than 1000 at byte 1001")
    local ok = string.rep("[", 1000) .. string.rep("]", 1000)
    assert.equals(ok, json.encode(json.decode(ok)))
  end)

  it("round-trips large documents with long strings", function()
    local parts = {}
    for i = 1, 5000 do parts[i] = "s" .. i .. (i % 3 == 0 and '\n"q"' or "") end
    local big = string.rep("x\\y\n\u{1F600}", 20000)
    local text = json.encode({ parts, big })
    local back = json.decode(text)
    assert.same(parts, back[1])
    assert.equals(big, back[2])
    assert.equals(text, json.encode(back))
  end)
end)

describe("json.encode", function()
  it("encodes plain tables as arrays or objects", function()
    assert.equals("[1,2,3]", json.encode({ 1, 2, 3 }))
    assert.equals("{}", json.encode({}))
    assert.equals('{"1":1,"3":3}', sorted({ 1, nil, 3 }))
    assert.equals('{"1":"a","x":1}', sorted({ "a", x = 1 }))
    assert.equals('{"1.5":"x","10":"y"}', sorted({ [1.5] = "x", [10] = "y" }))
  end)

  it("follows json.array and json.object", function()
    assert.equals("[]", json.encode(json.array({})))
    assert.equals("[]", json.encode(json.array()))
    assert.equals('{"1":1,"2":2}', sorted(json.object({ 1, 2 })))
    assert.equals("[1,2]", json.encode(json.array({ 1, 2, x = 3 })))
    assert.equals("[null,2]", json.encode(json.array({ nil, 2 })))
    local t = {}
    assert.equals(t, json.array(t))
  end)

  it("encodes numbers", function()
    assert.equals("1000000000000000", json.encode(1e15))
    assert.equals("9007199254740992", json.encode(2 ^ 53))
    assert.equals("9.007199254740994e+15", json.encode(2 ^ 53 + 2))
    assert.equals("0.1", json.encode(0.1))
    assert.equals("0.3333333333333333", json.encode(1 / 3))
    assert.equals("-1.5e+300", json.encode(-1.5e300))
    assert.equals("0", json.encode(-0.0))
    assert.equals("[-5,7]", json.encode({ -5LL, 7ULL }))
    for _, x in ipairs({ 0.1, 1 / 3, 2 ^ -1074, 1.7976931348623157e308, -2.5e-8 }) do
      assert.equals(x, json.decode(json.encode(x)))
    end
  end)

  it("escapes strings", function()
    assert.equals([["a\"b\\c/d\n\t\r\b\f\u0001\u001f"]], json.encode('a"b\\c/d\n\t\r\b\f\1\31'))
    assert.equals('"caf\u{e9} \u{1F600}"', json.encode("caf\u{e9} \u{1F600}"))
    assert.equals('"\\u0000"', json.encode("\0"))
  end)

  it("prints pretty output with sorted keys", function()
    local text = json.encode({ name = "x", list = { 1, { a = true }, {} }, empty = json.array(), n = json.null },
      { pretty = true })
    assert.equals(table.concat({
      "{",
      '  "empty": [],',
      '  "list": [',
      "    1,",
      "    {",
      '      "a": true',
      "    },",
      "    {}",
      "  ],",
      '  "n": null,',
      '  "name": "x"',
      "}",
    }, "\n"), text)
    assert.equals("[\n  1\n]", json.encode({ 1 }, { pretty = true }))
  end)

  it("raises clear errors", function()
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end, "json.encode: cycle detected: a table contains itself")
    assert.has_error(function() json.encode({ [true] = 1 }) end,
      "json.encode: object key must be a string or a number, got boolean")
    assert.has_error(function() json.encode({ 0 / 0 }) end, "json.encode: cannot encode NaN")
    assert.has_error(function() json.encode(math.huge) end, "json.encode: cannot encode inf")
    assert.has_error(function() json.encode({ f = print }) end, "json.encode: cannot encode a value of type function")
    assert.has_error(function() json.encode("ab\255") end, "json.encode: invalid UTF-8 in string (byte 3)")
    local deep = {}
    local c = deep
    for _ = 1, 1000 do
      c[1] = {}
      c = c[1]
    end
    assert.has_error(function() json.encode(deep) end, "json.encode: nesting deeper than 1000")
    local shared = {}
    assert.equals("[{},[{}]]", json.encode({ shared, { shared } }))
  end)
end)
