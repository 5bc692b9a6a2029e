--[[
users_json.lua: users, passwords and allowed topic prefixes from a JSON file.

    plugins:
      - name: lua
        options:
          scripts: [/etc/midge/lua/users_json.lua]

USERS_FILE (below) looks like etc/lua/users.json:

    {"users": {
       "carol": {"password": "$7$...", "topics": ["devices/carol/", "public/"]},
       "dave":  {"password": "$7$...", "topics": ["devices/dave/"]}}}

password is a hash as password files hold ("$7$", "$6$" or "$argon2id$";
make one with `midge_passwd -c -b /tmp/pw carol hunter2`). A listed user
logs in with that password, and may publish and subscribe to topics and
filters that start with one of its prefixes; end a prefix with "/" (the
prefix "public" would also cover "publicity/..."). A prefix may not hold
'+' or '#'. Users not in the file get nil: the next script, plugin or
password_file decides about them (nobody deciding means no), and so do
clients without a user name.

The file is read once, when the script loads: at startup and at each reload
(SIGHUP). Scripts have no io library; midge.read_file is there for this and
works only at a script's top level, while it loads, never inside a hook. A
file that is missing or wrong makes the script fail to load: the broker
refuses to start, and a reload keeps the scripts it had (the log says why).
]]

local USERS_FILE = "/etc/midge/users.json"

local function load_users(path)
  local text, err = midge.read_file(path)
  if not text then
    error("cannot read the users file: " .. err)
  end
  local doc, jerr = midge.json.decode(text)
  if type(doc) ~= "table" or type(doc.users) ~= "table" then
    error(path .. ": " .. (jerr or 'expected {"users": {...}}'))
  end
  local users = {}
  for name, entry in pairs(doc.users) do
    if type(entry) ~= "table" or type(entry.password) ~= "string"
        or type(entry.topics) ~= "table" then
      error(path .. ": user " .. name .. " needs a password and a list of topics")
    end
    local prefixes = {}
    for _, prefix in ipairs(entry.topics) do
      if type(prefix) ~= "string" or prefix == "" or prefix:find("[+#]") then
        error(path .. ": user " .. name .. ": bad topic prefix " .. tostring(prefix))
      end
      prefixes[#prefixes + 1] = prefix
    end
    users[name] = { hash = entry.password, prefixes = prefixes }
  end
  return users
end

local USERS = load_users(USERS_FILE)

local function allowed(username, topic)
  local user = username and USERS[username]
  if not user then
    return nil
  end
  for _, prefix in ipairs(user.prefixes) do
    if topic:sub(1, #prefix) == prefix then
      return true
    end
  end
  return false
end

function auth_on_register(client)
  local user = client.username and USERS[client.username]
  if not user then
    return nil
  end
  return client.password ~= nil and midge.password_check(user.hash, client.password)
end

function auth_on_subscribe(client, topic, qos)
  return allowed(client.username, topic)
end

function auth_on_publish(client, msg)
  return allowed(client.username, msg.topic)
end
