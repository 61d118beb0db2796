-- fs (API.md section 6): promises on libuv's threadpool, streams, errors.

local dir

local function path(name) return dir .. "/" .. name end

-- Open descriptors of this process (to check that streams close their files).
local function open_fds()
  return #await(fs.list("/proc/self/fd"))
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  await(fs.mkdir(dir))
end)

teardown(function()
  await(fs.remove(dir, { recursive = true }))
end)

describe("fs files", function()
  it("writeFile then readFile round-trips binary data", function()
    local data = "a\0b\r\n" .. string.rep("\255\1", 100000)
    assert.equals(true, await(fs.writeFile(path("bin"), data)))
    assert.equals(data, await(fs.readFile(path("bin"))))
  end)

  it("writeFile truncates, appendFile appends (and creates)", function()
    await(fs.writeFile(path("t"), "long content"))
    await(fs.writeFile(path("t"), "short"))
    assert.equals("short", await(fs.readFile(path("t"))))
    await(fs.appendFile(path("t"), "+more"))
    assert.equals("short+more", await(fs.readFile(path("t"))))
    await(fs.appendFile(path("new"), "x"))
    assert.equals("x", await(fs.readFile(path("new"))))
  end)

  it("readFile of an empty file is an empty string", function()
    await(fs.writeFile(path("empty"), ""))
    assert.equals("", await(fs.readFile(path("empty"))))
  end)

  it("numbers are written as text", function()
    await(fs.writeFile(path("n"), 42))
    assert.equals("42", await(fs.readFile(path("n"))))
  end)

  it("exists", function()
    await(fs.writeFile(path("e"), ""))
    assert.equals(true, await(fs.exists(path("e"))))
    assert.equals(true, await(fs.exists(dir)))
    assert.equals(false, await(fs.exists(path("missing"))))
  end)

  it("many operations in parallel", function()
    local ps = {}
    for i = 1, 50 do ps[i] = fs.writeFile(path("p" .. i), tostring(i)) end
    await(Promise.all(ps))
    for i = 1, 50 do ps[i] = fs.readFile(path("p" .. i)) end
    local got = await(Promise.all(ps))
    for i = 1, 50 do assert.equals(tostring(i), got[i]) end
  end)
end)

describe("fs.stat", function()
  it("reports files", function()
    await(fs.writeFile(path("s"), "12345"))
    local st = await(fs.stat(path("s")))
    assert.equals(5, st.size)
    assert.equals("file", st.type)
    assert.truthy(math.abs(st.mtime - os.time()) < 60)
    assert.equals("number", type(st.mode))
  end)

  it("reports directories", function()
    assert.equals("directory", await(fs.stat(dir)).type)
  end)

  it("reports a symbolic link as a link, without following it", function()
    await(fs.writeFile(path("target"), "abc"))
    local r = await(process.exec("ln", { "-s", path("target"), path("link") }))
    assert.equals(0, r.code)
    assert.equals("link", await(fs.stat(path("link"))).type)
    assert.equals("file", await(fs.stat(path("target"))).type)
  end)

  it("reports other kinds as other", function()
    assert.equals("other", await(fs.stat("/dev/null")).type)
  end)
end)

describe("fs directories", function()
  it("list returns sorted names without . and ..", function()
    await(fs.mkdir(path("l")))
    for _, n in ipairs({ "b", "a", "C", "a.txt" }) do await(fs.writeFile(path("l/" .. n), "")) end
    await(fs.mkdir(path("l/sub")))
    assert.same({ "C", "a", "a.txt", "b", "sub" }, await(fs.list(path("l"))))
  end)

  it("mkdir recursive creates parents and accepts an existing directory", function()
    await(fs.mkdir(path("m/n/o"), { recursive = true }))
    assert.equals("directory", await(fs.stat(path("m/n/o"))).type)
    await(fs.mkdir(path("m/n/o"), { recursive = true }))
    assert.rejects(fs.mkdir(path("m/n/o")), "EEXIST")
  end)

  it("remove deletes files, links and empty directories", function()
    await(fs.writeFile(path("r"), ""))
    await(fs.remove(path("r")))
    assert.equals(false, await(fs.exists(path("r"))))
    await(fs.mkdir(path("rd")))
    await(fs.remove(path("rd")))
    assert.equals(false, await(fs.exists(path("rd"))))
  end)

  it("remove refuses a non-empty directory unless recursive", function()
    await(fs.mkdir(path("tree/a/b"), { recursive = true }))
    await(fs.writeFile(path("tree/a/b/f"), "x"))
    assert.rejects(fs.remove(path("tree")), "ENOTEMPTY")
    await(fs.remove(path("tree"), { recursive = true }))
    assert.equals(false, await(fs.exists(path("tree"))))
  end)

  it("rename moves a file", function()
    await(fs.writeFile(path("from"), "moved"))
    await(fs.rename(path("from"), path("to")))
    assert.equals("moved", await(fs.readFile(path("to"))))
    assert.equals(false, await(fs.exists(path("from"))))
  end)
end)

describe("fs errors", function()
  it("reject with kind, code, path and a message naming the path", function()
    local missing = path("nope/file.txt")
    local ok, e = pcall(await, fs.readFile(missing))
    assert.equals(false, ok)
    assert.equals("fs", e.kind)
    assert.equals("ENOENT", e.code)
    assert.equals(missing, e.path)
    assert.equals("fs.readFile: " .. missing .. ": no such file or directory (ENOENT)", e.message)
    assert.equals(e.message, tostring(e))
  end)

  it("each operation names itself", function()
    assert.rejects(fs.stat(path("nope")), "fs.stat: " .. path("nope") .. ": no such file or directory (ENOENT)")
    assert.rejects(fs.list(path("nope")), "fs.list: ")
    assert.rejects(fs.remove(path("nope")), "fs.remove: ")
    assert.rejects(fs.readFile(dir), "EISDIR")
    assert.rejects(fs.writeFile(path("nope/x"), "data"), "fs.writeFile: " .. path("nope/x"))
  end)

  it("bad arguments raise at once", function()
    assert.has_error(function() fs.readFile(nil) end, "fs.readFile: expected a path string")
    assert.has_error(function() fs.writeFile(path("x"), {}) end, "fs.writeFile: expected a string to write")
  end)
end)

describe("fs streams", function()
  it("readStream yields chunks of at most chunkSize bytes", function()
    await(fs.writeFile(path("rs"), "abcdefghij"))
    assert.same({ "abcd", "efgh", "ij" }, await(fs.readStream(path("rs"), { chunkSize = 4 }):collect()))
    assert.equals("abcdefghij", table.concat(await(readFileStream(path("rs")):collect())))
  end)

  it("readStream of a large file reassembles exactly", function()
    local parts = {}
    for i = 1, 30000 do parts[i] = string.format("%08d|", i) end
    local data = table.concat(parts)
    await(fs.writeFile(path("big"), data))
    local chunks = await(fs.readStream(path("big")):collect())
    assert.truthy(#chunks >= 4)
    assert.equals(data, table.concat(chunks))
  end)

  it("readStream of a missing file fails its consumer", function()
    assert.rejects(fs.readStream(path("nope")):collect(), "fs.readStream: " .. path("nope"))
  end)

  it("lines splits \\n and \\r\\n and keeps a last line without newline", function()
    await(fs.writeFile(path("lines"), "one\r\ntwo\n\nthree"))
    assert.same({ "one", "two", "", "three" }, await(fs.lines(path("lines")):collect()))
  end)

  it("ending early closes the file", function()
    local parts = {}
    for i = 1, 20000 do parts[i] = "line " .. i end
    await(fs.writeFile(path("many"), table.concat(parts, "\n")))
    local before = open_fds()
    assert.same({ "line 1", "line 2" }, await(fs.lines(path("many")):take(2):collect()))
    sleep(0.01)
    -- (<=: a descriptor of an earlier test may close meanwhile; the stream's must not stay open)
    assert.truthy(open_fds() <= before)
  end)

  it("writeStream writes in order and close resolves once flushed", function()
    local w = fs.writeStream(path("ws"))
    for i = 1, 2000 do await(w:write(i .. "\n")) end
    await(w:close())
    local got = await(fs.readFile(path("ws")))
    local n = 0
    for _ in got:gmatch("[^\n]+") do n = n + 1 end
    assert.equals(2000, n)
    assert.equals("2000\n", got:sub(-5))
  end)

  it("writeStream with append", function()
    await(fs.writeFile(path("wa"), "head\n"))
    local w = fs.writeStream(path("wa"), { append = true })
    await(w:write("tail\n"))
    await(w:close())
    assert.equals("head\ntail\n", await(fs.readFile(path("wa"))))
  end)

  it("writeStream rejects a write after close", function()
    local w = fs.writeStream(path("wc"))
    await(w:write("x"))
    await(w:close())
    assert.rejects(w:write("y"), "write after close")
    assert.equals(w:close(), w:close())
  end)

  it("writeStream to a bad path rejects the writes or the close", function()
    local w = fs.writeStream(path("nope/w"))
    local ok1 = pcall(await, w:write("x"))
    local ok2, e = pcall(await, w:close())
    assert.equals(false, ok1 and ok2)
    assert.equals("ENOENT", e.code)
  end)

  it("pipeTo a path copies a file", function()
    await(fs.writeFile(path("src"), "a\nb\nc\n"))
    await(fs.lines(path("src")):map(function(l) return l:upper() .. "\n" end):pipeTo(path("dst")))
    assert.equals("A\nB\nC\n", await(fs.readFile(path("dst"))))
  end)

  it("pipeTo a writeStream honours backpressure (bounded buffering)", function()
    local w = fs.writeStream(path("bp"))
    local chunk = string.rep("x", 16384)
    local n = 0
    await(Stream.from(function()
      n = n + 1
      if n > 400 then return nil end
      return chunk
    end):pipeTo(w))
    await(w:close())
    assert.equals(400 * 16384, await(fs.stat(path("bp"))).size)
  end)
end)
