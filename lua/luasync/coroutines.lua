-- User coroutines inside tasks (API.md section 2). coroutine.resume/wrap are
-- replaced so that an await deep inside a user coroutine suspends the whole
-- task: the inner coroutine yields PARK, each enclosing resume passes it
-- outward, and the values it is later woken with travel back in. Plain
-- coroutine.yield keeps its Lua meaning.
local PARK = require("luasync.sched").PARK

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local error = error

-- (PARK travels with the op it waits on; the scheduler records the wait.)
local function pass(co, ok, first, ...)
  if ok and first == PARK then
    return pass(co, co_resume(co, co_yield(first, ...)))
  end
  return ok, first, ...
end

local function resume(co, ...)
  return pass(co, co_resume(co, ...))
end

local function wrap_pass(co, ok, first, ...)
  if ok then
    if first == PARK then
      return wrap_pass(co, co_resume(co, co_yield(first, ...)))
    end
    return first, ...
  end
  error(first, 0)
end

local function wrap(f)
  local co = co_create(f)
  return function(...)
    return wrap_pass(co, co_resume(co, ...))
  end
end

coroutine.resume = resume
coroutine.wrap = wrap

return { resume = resume, wrap = wrap }
