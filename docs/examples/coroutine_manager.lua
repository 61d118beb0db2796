-- Interleaved tasks with spawn and sleep (from the design).
-- Spawn async tasks
local task1 = spawn(function(name)
    print(name .. " started")
    sleep(1)
    print(name .. " middle")
    sleep(1)
    print(name .. " done")
end, "Task1")

local task2 = spawn(function(name)
    for i = 1, 3 do
        print(name .. " count:", i)
        sleep(0.5)
    end
end, "Task2")

-- Main continues
print("Main continues...")
sleep(3)
print("Main done")
