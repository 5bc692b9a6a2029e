--[[
ratelimit.lua: at most MAX_PER_SECOND publishes per client and second.

    plugins:
      - name: lua
        options:
          scripts: [/etc/midge/lua/ratelimit.lua]
          # cache_ttl must stay 0 (the default): the decision cache would
          # answer repeated publishes without running the script.

Each client's publishes are counted per wall clock second in midge.cache.
Past the limit a publish is refused: an MQTT 5 client gets PUBACK / PUBREC
0x97 (quota exceeded), an older one a plain acknowledgement, and the message
is dropped either way. The count starts again with the next second. One log
line per client and second says that the limit was hit.

midge.cache belongs to one worker thread, and a client always runs on the
same worker, so the count is exact without any locking. It lives in the Lua
state: a reload (SIGHUP) starts every count afresh.

PASS says what a publish under the limit gets: true lets it through (the
script works on its own); nil leaves it to the next script, plugin or
acl_file (use nil, and list this script first, when access rules follow).
]]

local MAX_PER_SECOND = 10
local PASS = true
local QUOTA_EXCEEDED = 0x97

function auth_on_publish(client, msg)
  local key = "ratelimit:" .. (client.client_id or "")
  local second = math.floor(midge.now())
  local count = 0
  if midge.cache.get(key .. ":second") == second then
    count = midge.cache.get(key .. ":count") or 0
  end
  count = count + 1
  -- Two seconds to live: stale counts of gone clients expire by themselves.
  midge.cache.set(key .. ":second", second, 2)
  midge.cache.set(key .. ":count", count, 2)
  if count <= MAX_PER_SECOND then
    return PASS
  end
  if count == MAX_PER_SECOND + 1 then
    midge.log("notice", "client", client.client_id, "is over", MAX_PER_SECOND,
              "publishes a second; dropping the rest of this second's")
  end
  return false, QUOTA_EXCEEDED
end
