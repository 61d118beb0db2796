-- process (API.md section 6): exec, spawn, kill, env, signals.

describe("process.exec", function()
  it("collects stdout, stderr and the exit code", function()
    local r = await(process.exec("sh", { "-c", "printf out; printf err >&2; exit 3" }))
    assert.same({ code = 3, stdout = "out", stderr = "err" }, r)
  end)

  it("passes arguments literally, without a shell", function()
    local r = await(process.exec("printf", { "[%s]", "a b", "x;y", "$(id)", "", 42 }))
    assert.equals("[a b][x;y][$(id)][][42]", r.stdout)
  end)

  it("feeds stdin", function()
    local input = string.rep("0123456789", 100000) .. "\0end"
    local r = await(process.exec("cat", {}, { stdin = input }))
    assert.equals(#input, #r.stdout)
    assert.equals(input, r.stdout)
  end)

  it("gives the child an empty stdin by default", function()
    assert.equals("", await(process.exec("cat")).stdout)
  end)

  it("runs in cwd", function()
    assert.equals("/\n", await(process.exec("pwd", {}, { cwd = "/" })).stdout)
  end)

  it("reports the terminating signal by name, with a nil code", function()
    local r = await(process.exec("sh", { "-c", "kill -KILL $$" }))
    assert.is_nil(r.code)
    assert.equals("SIGKILL", r.signal)
  end)

  it("rejects for a missing program, naming it", function()
    local ok, e = pcall(await, process.exec("luasync-missing-program"))
    assert.equals(false, ok)
    assert.equals("process", e.kind)
    assert.equals("ENOENT", e.code)
    assert.equals("process.exec: cannot run 'luasync-missing-program': no such file or directory (ENOENT)",
      e.message)
  end)

  it("rejects for a missing cwd", function()
    assert.rejects(process.exec("pwd", {}, { cwd = "/luasync-missing-dir" }), "ENOENT")
  end)

  it("raises at once for bad arguments", function()
    assert.has_error(function() process.exec(nil) end, "process.exec: expected a command name")
    assert.has_error(function() process.exec("echo", { {} }) end, "args[1] must be a string")
    assert.has_error(function() process.exec("cat", {}, { stdin = 5 }) end, "stdin must be a string")
  end)

  it("cancelling the promise kills the child", function()
    local t0 = require("luasync.core").hrtime()
    local p = process.exec("sleep", { "20" })
    sleep(0.02)
    p:cancel()
    assert.rejects(p, "cancelled")
    assert.truthy(require("luasync.core").hrtime() - t0 < 5)
  end)
end)

describe("process environment", function()
  it("process.env is a table of the environment", function()
    assert.equals("table", type(process.env))
    assert.equals(os.getenv("PATH"), process.env.PATH)
  end)

  it("env adds to the inherited environment", function()
    local r = await(process.exec("sh", { "-c", 'echo "$PATH|$LUASYNC_X"' }, { env = { LUASYNC_X = "x y" } }))
    assert.equals(os.getenv("PATH") .. "|x y\n", r.stdout)
  end)

  it("clear_env starts from an empty environment", function()
    local r = await(process.exec("env", {}, { clear_env = true, env = { A = "1", B = 2 } }))
    assert.equals("A=1\nB=2\n", r.stdout)
  end)

  it("env = false removes a variable", function()
    local r = await(process.exec("sh", { "-c", 'echo "[$HOME]"' }, { env = { HOME = false } }))
    assert.equals("[]\n", r.stdout)
  end)

  it("changes to process.env reach children", function()
    process.env.LUASYNC_SPEC_VAR = "set"
    local r = await(process.exec("sh", { "-c", 'echo "$LUASYNC_SPEC_VAR"' }))
    process.env.LUASYNC_SPEC_VAR = nil
    assert.equals("set\n", r.stdout)
  end)

  it("process.pid is ours", function()
    local r = await(process.exec("sh", { "-c", "echo $PPID" }))
    assert.equals(tostring(process.pid) .. "\n", r.stdout)
  end)
end)

describe("process.spawn", function()
  it("streams stdout while the child runs", function()
    local c = process.spawn("sh", { "-c", "echo one; sleep 0.3; echo two" })
    local s = c.stdout:lines()
    assert.equals("one", s:read())
    assert.is_nil(c.exit)  -- still running
    assert.equals("two", s:read())
    assert.is_nil(s:read())
    assert.same({ code = 0 }, await(c:wait()))
  end)

  it("stdin is a writable; closing it ends the child's input", function()
    local c = process.spawn("wc", { "-l" })
    for i = 1, 1000 do await(c.stdin:write("line " .. i .. "\n")) end
    await(c.stdin:close())
    assert.equals("1000", (await(c.stdout:collect())[1]:gsub("%s", "")))
    assert.equals(0, await(c:wait()).code)
  end)

  it("pipes one child into another", function()
    local a = process.spawn("printf", { "b\\na\\nc\\n" })
    local b = process.spawn("sort")
    spawn(function()
      await(a.stdout:pipeTo(b.stdin))
      await(b.stdin:close())
    end)
    assert.equals("a\nb\nc\n", table.concat(await(b.stdout:collect())))
    assert.equals(0, await(b:wait()).code)
  end)

  it("stderr is a stream too", function()
    local c = process.spawn("sh", { "-c", "echo oops >&2" })
    assert.same({ "oops" }, await(c.stderr:lines():collect()))
    assert.equals(0, await(c:wait()).code)
  end)

  it("stdio can be ignored", function()
    local c = process.spawn("sh", { "-c", "echo gone" }, { stdout = "ignore", stderr = "ignore", stdin = "ignore" })
    assert.is_nil(c.stdout)
    assert.is_nil(c.stdin)
    assert.equals(0, await(c:wait()).code)
  end)

  it("wait can be called many times, before and after the exit", function()
    local c = process.spawn("true")
    local p1, p2 = c:wait(), c:wait()
    assert.same({ code = 0 }, await(p1))
    assert.same({ code = 0 }, await(p2))
    assert.same({ code = 0 }, await(c:wait()))
  end)

  it("kill sends SIGTERM by default, or the signal named or numbered", function()
    local c = process.spawn("sleep", { "20" })
    assert.equals(true, c:kill())
    assert.same({ signal = "SIGTERM" }, await(c:wait()))
    assert.equals(false, c:kill())
    c = process.spawn("sleep", { "20" })
    c:kill("SIGUSR1")
    assert.equals("SIGUSR1", await(c:wait()).signal)
    c = process.spawn("sleep", { "20" })
    c:kill("HUP")
    assert.equals("SIGHUP", await(c:wait()).signal)
    c = process.spawn("sleep", { "20" })
    c:kill(9)
    assert.equals("SIGKILL", await(c:wait()).signal)
    assert.has_error(function() c:kill("SIGNOPE") end, "unknown signal")
  end)

  it("closing the stdout stream early closes the pipe", function()
    local c = process.spawn("yes")
    assert.same({ "y", "y", "y" }, await(c.stdout:lines():take(3):collect()))
    -- yes stops once its pipe is closed: killed by SIGPIPE, or (libuv's pipes
    -- are socket pairs) failing with ECONNRESET when unread data was dropped.
    local r = await(c:wait())
    assert.truthy(r.signal == "SIGPIPE" or (r.code ~= nil and r.code ~= 0), r.signal or r.code)
  end)

  it("raises for a missing program", function()
    assert.has_error(function() process.spawn("luasync-missing-program") end,
      "process.spawn: cannot run 'luasync-missing-program'")
  end)
end)

describe("process.onSignal", function()
  it("runs the handler as a task with the signal name", function()
    local got = {}
    local h = process.onSignal("SIGUSR2", function(name, num)
      got[#got + 1] = name
      got[#got + 1] = num
    end)
    await(process.exec("kill", { "-USR2", tostring(process.pid) }))
    sleep(0.1)
    h:stop()
    assert.equals("SIGUSR2", got[1])
    assert.equals("number", type(got[2]))
  end)

  it("rejects unknown and uncatchable signals", function()
    assert.has_error(function() process.onSignal("SIGNOPE", function() end) end, "unknown signal")
    assert.has_error(function() process.onSignal("SIGKILL", function() end) end, "cannot be caught")
  end)
end)
