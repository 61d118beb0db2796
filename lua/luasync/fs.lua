-- luasync.fs: the fs global (API.md section 6). Every call returns a Promise;
-- the work runs in libuv's threadpool (src/io/mod_fs.cpp). Failures reject with
-- {kind="fs", code="ENOENT", path=, message="fs.readFile: /x: no such file or directory (ENOENT)"}.
local native = require("luasync.native.fs")
local Promise = require("luasync.promise")
local errors = require("luasync.errors")
local iobase = require("luasync.iobase")

local type, tostring, error = type, tostring, error

local M = {}

local function fs_error(api, path, code, msg)
  return errors.new("fs", string.format("%s: %s: %s (%s)", api, path, msg, code), { code = code, path = path })
end

local function done(ctx, a, b, c, d)
  local p = ctx.p
  if a == nil then
    return Promise._reject(p, fs_error(ctx.api, ctx.path, b, c), ctx.trace)
  end
  if ctx.op == "stat" then
    return Promise._fulfill(p, { size = a, type = b, mtime = c, mode = d })
  end
  Promise._fulfill(p, a)
end

local function check_path(api, path)
  if type(path) ~= "string" then error(api .. ": expected a path string, got " .. type(path), 3) end
end

local function run(api, op, path, arg)
  check_path(api, path)
  local p = Promise._new()
  local ctx = { p = p, api = api, op = op, path = path, trace = errors.capture(3) }
  local ok, code, msg = native.run(done, ctx, op, path, arg)
  if not ok then Promise._reject(p, fs_error(api, path, code, msg)) end
  return p
end

local function check_data(api, data)
  local t = type(data)
  if t == "number" then return tostring(data) end
  if t ~= "string" then error(api .. ": expected a string to write, got " .. t, 3) end
  return data
end

--- fs.readFile(path) -> Promise of the whole content
function M.readFile(path) return run("fs.readFile", "readFile", path) end

--- fs.writeFile(path, data) -> Promise (creates or truncates)
function M.writeFile(path, data)
  return run("fs.writeFile", "writeFile", path, check_data("fs.writeFile", data))
end

--- fs.appendFile(path, data) -> Promise (creates if needed)
function M.appendFile(path, data)
  return run("fs.appendFile", "appendFile", path, check_data("fs.appendFile", data))
end

--- fs.exists(path) -> Promise of a boolean (follows links)
function M.exists(path) return run("fs.exists", "exists", path) end

--- fs.stat(path) -> Promise of {size=, type=, mtime=, mode=}; a link is reported as "link"
function M.stat(path) return run("fs.stat", "stat", path) end

--- fs.list(dir) -> Promise of the sorted names in dir (without "." and "..")
function M.list(path) return run("fs.list", "list", path) end

--- fs.remove(path, {recursive=bool}) -> Promise: a file, a link or an empty directory; a tree with recursive
function M.remove(path, opts)
  return run("fs.remove", "remove", path, type(opts) == "table" and opts.recursive or false)
end

--- fs.mkdir(path, {recursive=bool}) -> Promise
function M.mkdir(path, opts)
  return run("fs.mkdir", "mkdir", path, type(opts) == "table" and opts.recursive or false)
end

--- fs.rename(from, to) -> Promise
function M.rename(from, to)
  check_path("fs.rename", to)
  return run("fs.rename", "rename", from, to)
end

---------------------------------------------------------------------------
-- Streams

--- fs.readStream(path, {chunkSize=}) -> Stream of chunks (default 64 KiB);
-- the file is opened on the first read, so a missing file fails the consumer.
function M.readStream(path, opts)
  check_path("fs.readStream", path)
  local chunk = 0
  if type(opts) == "table" and opts.chunkSize ~= nil then
    chunk = tonumber(opts.chunkSize)
    if not chunk or chunk < 1 then error("fs.readStream: chunkSize must be a positive number", 2) end
    chunk = math.floor(chunk)
  end
  local src = iobase.source(native.reader(path, chunk), "file read",
    function(code, msg) return fs_error("fs.readStream", path, code, msg) end)
  return iobase.stream(src)
end

--- fs.lines(path) -> Stream of the file's lines (without "\n" or "\r\n")
function M.lines(path, opts)
  check_path("fs.lines", path)
  return M.readStream(path, opts):lines()
end

--- fs.writeStream(path, {append=bool}) -> writable: w:write(data) -> Promise, w:close() -> Promise
function M.writeStream(path, opts)
  check_path("fs.writeStream", path)
  local append = type(opts) == "table" and opts.append or false
  return iobase.writable(native.sink(path, append), "fs.writeStream(" .. path .. ")",
    function(code, msg) return fs_error("fs.writeStream", path, code, msg) end)
end

return M
