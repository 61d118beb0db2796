-- Times json.decode and json.encode on one file; prints one line:
--   decode_ms <median> encode_ms <median> first_decode_ms <ms> first_encode_ms <ms> bytes <n> out_bytes <n>
-- The first call of each is reported on its own (it also pays for the memory
-- the process has to get from the kernel); the medians are over RUNS more
-- calls after 2 untimed warm-up rounds. Times are CPU time (os.clock).
--
--   luasync bench/json/bench.lua FILE [RUNS] [MODULE] [MODE]
--   luajit  bench/json/bench.lua FILE [RUNS] cjson    any module with decode/encode
-- MODULE "" (or none) means the global json; MODE is compact (default),
-- sorted ({sort_keys=true}) or pretty ({pretty=true}), for luasync.json.
local path, runs, modname, mode = arg[1], tonumber(arg[2]) or 7, arg[3], arg[4] or "compact"
assert(path, "usage: bench.lua FILE [RUNS] [MODULE] [MODE]")
local json = (modname and modname ~= "") and require(modname) or json
local opts = ({ compact = nil, sorted = { sort_keys = true }, pretty = { pretty = true } })[mode]

local f = assert(io.open(path, "rb"))
local text = f:read("*a")
f:close()

local function median(t)
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

local dec, enc = {}, {}
local value, out
for i = 1, runs + 3 do
  value, out = nil, nil
  collectgarbage()
  collectgarbage()
  local t0 = os.clock()
  value = json.decode(text)
  dec[i] = os.clock() - t0
  collectgarbage()
  t0 = os.clock()
  if opts then out = json.encode(value, opts) else out = json.encode(value) end
  enc[i] = os.clock() - t0
end
local first_dec, first_enc = dec[1], enc[1]
for _ = 1, 3 do
  table.remove(dec, 1)
  table.remove(enc, 1)
end
print(string.format("decode_ms %.1f encode_ms %.1f first_decode_ms %.1f first_encode_ms %.1f bytes %d out_bytes %d",
  median(dec) * 1e3, median(enc) * 1e3, first_dec * 1e3, first_enc * 1e3, #text, #out))
