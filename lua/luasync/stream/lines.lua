-- luasync.stream.lines: s:lines(), the line splitter behind s:readLine(),
-- fs.lines and stdin:lines(). Installed by stream.lua (returns an installer).
local find, sub, byte, concat = string.find, string.sub, string.byte, table.concat
local type, error, tostring = type, error, tostring

return function(M, Stream)
  local derive = M._derive

  --- s:lines(): re-chunk text into lines, without their "\n" or "\r\n".
  -- Lines are cut with plain string.find searches over each chunk (no per-byte
  -- Lua work); only a line that spans chunks is assembled from pieces.
  function Stream:lines()
    local up = self
    local buf, pos = "", 1   -- current chunk and the start of the unread part
    local pieces, np = nil, 0  -- parts of a line spanning chunks
    local done = false

    local function refill()
      -- No newline in buf[pos..]: keep that tail and pull chunks until one has a newline.
      while true do
        if pos <= #buf then
          if not pieces then pieces, np = {}, 0 end
          np = np + 1
          pieces[np] = pos == 1 and buf or sub(buf, pos)
        end
        buf, pos = "", 1
        local chunk = up._pull()
        if chunk == nil then
          done = true
          if np == 0 then return nil end
          local line = concat(pieces, "", 1, np)
          pieces, np = nil, 0
          return line
        end
        if type(chunk) ~= "string" then
          if type(chunk) ~= "number" then
            error("Stream.lines: expected text chunks, got " .. type(chunk), 0)
          end
          chunk = tostring(chunk)
        end
        local i = find(chunk, "\n", 1, true)
        if i then
          buf, pos = chunk, i + 1
          if np == 0 then
            local j = i - 1
            if j > 0 and byte(chunk, j) == 13 then j = j - 1 end
            return sub(chunk, 1, j)
          end
          np = np + 1
          pieces[np] = sub(chunk, 1, i - 1)
          local line = concat(pieces, "", 1, np)
          for x = 1, np do pieces[x] = nil end
          np = 0
          if byte(line, -1) == 13 then line = sub(line, 1, -2) end
          return line
        end
        buf = chunk
      end
    end

    local s = derive(up, function()
      local i = find(buf, "\n", pos, true)
      if i then
        local p = pos
        pos = i + 1
        local j = i - 1
        if j >= p and byte(buf, j) == 13 then j = j - 1 end
        return sub(buf, p, j)
      end
      if done then return nil end
      return refill()
    end)
    s._lines = true
    return s
  end
end
