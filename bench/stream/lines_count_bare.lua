-- Bare LuaJIT: counts the lines of a file with io.lines. usage: luajit lines_count_bare.lua PATH
local t0 = os.clock()
local n = 0
for _ in io.lines(arg[1]) do n = n + 1 end
print("lines=" .. n)
print(string.format("elapsed_ms=%.1f", (os.clock() - t0) * 1000))
