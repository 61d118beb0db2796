-- guide_tasks.lua: tasks run concurrently on one thread.
local function worker(name, n, delay)
  for i = 1, n do
    print(name, i)
    sleep(delay)                 -- each sleep lets the other tasks run
  end
  return name .. " done"
end

-- spawn starts the task at once (up to its first sleep) and returns a Promise.
local a = spawn(worker, "a", 3, 0.02)
local b = spawn(worker, "b", 2, 0.03)
print(await(a), await(b))

-- go is fire-and-forget; the script still waits for it before exiting.
go(function()
  sleep(0.01)
  print("background task finished")
end)

-- Give up on slow work: timeout rejects and cancels the task.
local slow = spawn(function() sleep(10) return "too late" end)
local ok, err = pcall(await, slow:timeout(0.05))
print(ok, err.kind, err.message)
print("slow task:", slow:status())

-- Cancel a task yourself: it stops at the point where it waits.
local ticker = spawn(function()
  local ok2, e = pcall(sleep, 10)
  print("ticker woke up:", ok2, e.kind)
end)
ticker:cancel()
