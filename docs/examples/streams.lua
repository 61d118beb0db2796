-- Async stream processing: the seed example 002-ExampleAsyncStreams.lua, made
-- runnable. It writes test.txt first, reads it back as a stream of chunks,
-- and removes it at the end.
local filename = "test.txt"
await(fs.writeFile(filename, "the quick brown fox\njumps over\n\nthe lazy dog\n"))

local processFile = async(function(filename)
    local stream = readFileStream(filename)

    local lineCount = 0
    local wordCount = 0

    -- Process stream asynchronously
    await(stream:forEach(function(chunk)
        -- Count lines (a chunk is up to 64 KiB: this small file is one chunk;
        -- see the lines() version below for files of any size)
        for line in chunk:gmatch("[^\n]+") do
            lineCount = lineCount + 1

            -- Count words
            for word in line:gmatch("%S+") do
                wordCount = wordCount + 1
            end
        end
    end))

    return {
        lines = lineCount,
        words = wordCount
    }
end)

-- Use the async function
await(processFile(filename):andThen(function(stats)
    print("File stats:", stats.lines, "lines,", stats.words, "words")
end):catch(function(err)
    print("Error processing file:", err)
end))

-- A missing file rejects the promise; the error names the problem.
await(processFile("missing.txt"):andThen(function(stats)
    print("File stats:", stats.lines, "lines,", stats.words, "words")
end):catch(function(err)
    print("Error processing file:", err.code)
end))

-- Stream pipeline
local pipeline = async(function(filename)
    local stream = readFileStream(filename)

    local result = await(
        stream
            :map(function(chunk)
                return chunk:upper()
            end)
            :filter(function(chunk)
                return #chunk > 0
            end)
            :collect()
    )

    return result
end)

local chunks = await(pipeline(filename))
print("Pipeline:", #chunks, "chunk")
io.write(chunks[1])

-- Line by line, correct across chunk boundaries whatever the file size.
local words = await(readFileStream(filename)
    :lines()
    :filter(function(line) return line ~= "" end)
    :map(function(line) return select(2, line:gsub("%S+", "")) end)
    :reduce(function(total, n) return total + n end, 0))
print("Words:", words)

await(fs.remove(filename))
