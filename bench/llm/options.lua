-- Command-line options of the luasync bench scripts beside this file: "--name number" pairs over the given
-- defaults (names not among them, non-numbers, or a missing --port print the usage and exit 2).
--
--   local opts = require("options")(arg, { streams = 1000, tokens = 200 }, "usage: x.lua --port P ...")
return function(argv, defaults, usage)
  local opts = { port = false }
  for k, v in pairs(defaults) do opts[k] = v end
  local function fail()
    io.stderr:write(usage, "\n")
    os.exit(2)
  end
  local i = 1
  while i <= #argv do
    local k = argv[i]:match("^%-%-(%w+)$")
    local v = tonumber(argv[i + 1])
    if not k or opts[k] == nil or not v then fail() end
    opts[k] = v
    i = i + 2
  end
  if not opts.port then fail() end
  return opts
end
