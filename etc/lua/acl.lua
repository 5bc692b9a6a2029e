--[[
acl.lua: a private topic tree per user, users/<username>/#.

    plugins:
      - name: lua
        options:
          scripts: [/etc/midge/lua/auth.lua, /etc/midge/lua/acl.lua]

A client logged in as <username> may publish and subscribe inside
users/<username>/ (and to users/<username> itself), and nowhere else. The
user ADMIN may also subscribe to $SYS (the broker's statistics); nobody
publishes there. Clients without a user name may do nothing, and neither may
a user name with '/', '+' or '#' in it: inside a topic it would reach into
other users' trees (a user "+" would cover them all).

Subscription filters are checked as plain strings: a filter that starts with
"users/<username>/" can only match topics inside that tree, wildcards or not.

Every answer here is final (true or false), so an acl_file or a later script
is never asked; return nil instead of false to let them grant more.
on_deliver checks each message against the same rules again, so that a
stricter version of this script, reloaded with SIGHUP, also applies to
subscriptions made before the reload.

Who may log in is not this script's business: pair it with auth.lua, a
password_file or another authentication plugin.
]]

local ADMIN = "admin"

-- A user name that is safe inside a topic.
local function usable(username)
  return username ~= nil and username ~= "" and not username:find("[/+#]")
end

-- topic (or filter) is users/<username> or below it.
local function in_own_tree(username, topic)
  local root = "users/" .. username
  return topic == root or topic:sub(1, #root + 1) == root .. "/"
end

local function is_sys(topic)
  return topic == "$SYS" or topic:sub(1, 5) == "$SYS/"
end

function auth_on_subscribe(client, topic, qos)
  local user = client.username
  if not usable(user) then
    return false
  end
  return in_own_tree(user, topic) or (user == ADMIN and is_sys(topic))
end

function auth_on_publish(client, msg)
  local user = client.username
  if not usable(user) then
    return false
  end
  return in_own_tree(user, msg.topic)
end

function on_deliver(client, msg)
  local user = client.username
  if not usable(user) then
    return false
  end
  return in_own_tree(user, msg.topic) or (user == ADMIN and is_sys(msg.topic))
end
