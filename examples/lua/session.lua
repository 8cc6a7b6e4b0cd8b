-- One session of examples/lua/lua_host.c. The host runs this chunk once per session, each on its
-- own libcoro coroutine (and its own Lua thread), many sessions interleaved.
--
-- host.wait(v) hands v to the host's scheduler and suspends the whole session: its Lua frames
-- and the C frames between them. The scheduler resumes it later with v + id. Every wait below
-- happens with C functions on the stack between this Lua code and the host, where Lua's own
-- coroutine.yield stops with "attempt to yield across a C-call boundary":
--   - host.call(f, ...) is a C function that calls f with lua_call (no continuation), nested;
--   - table.sort calls its comparator from C;
--   - string.gsub calls its replacement function from C.
local id = ...
assert(host.session() == id, "the host's idea of the current session matches")

-- Lua -> C -> Lua -> C ... n times, then a wait at the bottom.
local function nested(n)
  if n == 0 then
    return host.wait(id)                    -- = 2 * id once resumed
  end
  return host.call(nested, n - 1) + n
end

local total = 0
for round = 1, 3 do
  total = total + nested(round + id % 5)    -- 2*id + m*(m+1)/2 with m = round + id % 5
end

if id % 100 == 50 then
  -- Deep: 150 levels of C -> Lua -> C (Lua allows 200 C levels per thread); the session's stack
  -- holds them all while it is suspended at the bottom.
  total = total + nested(150)               -- 2*id + 150*151/2
end

local t = { 5, 3, 9, 1 }
table.sort(t, function(a, b)
  assert(host.wait(a) == a + id)            -- suspended inside table.sort's C code
  return a < b
end)

local s = string.gsub("a-b-c", "%a", function(c)
  return tostring(host.wait(#c))            -- suspended inside string.gsub: "<1+id>-<1+id>-<1+id>"
end)

if id % 1000 == 999 then
  -- A Lua error raised after waits, deep in nested C calls, is caught by this session's own
  -- lua_pcall in the host: the longjmp stays on this coroutine's stack.
  host.call(host.call, error, "session " .. id .. " failed on purpose")
end

assert(host.session() == id)
return total, table.concat(t, ","), s
