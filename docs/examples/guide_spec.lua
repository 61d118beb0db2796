-- guide_spec.lua: luasync test docs/examples/guide_spec.lua
local function slugify(title)
  return (title:lower():gsub("[^%w]+", "-"):gsub("^%-", ""):gsub("%-$", ""))
end

local fetchTitle = async(function(id)    -- stands in for an HTTP call
  sleep(0.01)
  if id == 0 then error("no page 0", 0) end
  return "Page " .. id
end)

describe("slugify", function()
  it("joins lower-case words with dashes", function()
    assert.equals("hello-lua-world", slugify("Hello, Lua World!"))
  end)
end)

describe("fetchTitle", function()
  it("can be awaited in a test", function()
    assert.equals("Page 3", await(fetchTitle(3)))
  end)

  it("rejects page 0", function()
    assert.rejects(fetchTitle(0), "no page 0")
  end)

  pending("caches titles")
end)
