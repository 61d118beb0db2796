-- Promise chains and Promise.all (from the design). fetchData stands in for a
-- real request: it settles after a short delay, and rejects for a "bad" URL.
local function fetchData(url)
  return Promise.new(function(resolve, reject)
    setTimeout(function()
      if url:find("bad", 1, true) then
        reject("cannot fetch " .. url)
      else
        resolve("data from " .. url)
      end
    end, 0.01)
  end)
end

-- Promise chaining
fetchData("https://api.example.com")
    :andThen(function(data)
        print("Received:", data)
        return fetchData("https://api.example.com/2")
    end)
    :andThen(function(data2)
        print("Second data:", data2)
    end)
    :catch(function(err)
        print("Error:", err)
    end)

-- Promise.all
Promise.all({
    fetchData("url1"),
    fetchData("url2"),
    fetchData("url3")
}):andThen(function(results)
    print("All results:", #results)
end)

-- A rejecting fetch is caught at the end of its chain
fetchData("https://bad.example.com")
    :andThen(function(data) print("unexpected:", data) end)
    :catch(function(err) print("Error:", err) end)
