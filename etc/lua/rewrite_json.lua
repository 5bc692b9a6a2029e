--[[
rewrite_json.lua: stamps JSON sensor readings with the time they arrived.

    plugins:
      - name: lua
        options:
          scripts: [/etc/midge/lua/rewrite_json.lua]

A message published under sensors/ whose payload is a JSON object, say
{"t": 21.5}, goes on as {"t":21.5,"received_at":1718031234.25}: the same
object plus the broker's wall clock time (seconds since 1970, with
fractions). Anything else passes untouched: other payloads (plain text,
JSON that is not an object, broken JSON) and other topics. Subscribers get
the rewritten message; the publisher's own copy is gone.

midge.json.decode returns nil and a message for what is not JSON, and never
raises; midge.json.encode writes the keys in no particular order, and a
JSON null that was read comes back as midge.json.null.

Returning a table allows the message with changes, so for sensors/ this
script has the final word. PASS says what every other message gets: true
lets it through (the script works on its own); nil leaves it to the next
script, plugin or acl_file (use nil when other access rules follow, and
list those scripts before this one).
]]

local PASS = true

function auth_on_publish(client, msg)
  if not midge.topic_matches("sensors/#", msg.topic) then
    return PASS
  end
  -- Only objects: "[1,2]" or "42" are JSON, but have no room for a field.
  if not msg.payload:find("^%s*{") then
    return PASS
  end
  local doc = midge.json.decode(msg.payload)
  if type(doc) ~= "table" then
    return PASS
  end
  doc.received_at = midge.now()
  return { payload = midge.json.encode(doc) }
end
