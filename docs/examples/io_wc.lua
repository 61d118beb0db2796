-- wc for stdin: lines, words and bytes (a last line without newline counts one
-- byte more, as if it had one). Works on a terminal, a pipe or a file:
--   printf 'one two\nthree\n' | luasync docs/examples/io_wc.lua
local lines, words, bytes = 0, 0, 0
await(stdin:lines():forEach(function(line)
  lines = lines + 1
  bytes = bytes + #line + 1
  words = words + select(2, line:gsub("%S+", ""))
end))
print(lines, words, bytes)
