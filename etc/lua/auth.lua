--[[
auth.lua: users and password hashes kept in the script (auth_on_register).

    plugins:
      - name: lua                     # or path: /usr/lib/midge/plugins/lua.so
        options:
          scripts: [/etc/midge/lua/auth.lua]
          cache_ttl: 60               # a reconnect within 60 s skips the hash

A user in USERS logs in with the right password and is refused with a wrong
one (or none). Anyone else gets nil, "no opinion": the next script, plugin or
password_file decides, and when nobody does the login is refused. This
script only authenticates; what clients may publish or subscribe to is up to
ACL scripts (acl.lua) or an acl_file.

The hashes below are real ones, made with midge's own tool for the example
users alice (password "secret") and bob (password "builder"):

    midge_passwd -c -b /tmp/pw alice secret
    midge_passwd -b /tmp/pw bob builder
    cat /tmp/pw

They are PBKDF2-SHA512 with 210000 rounds ("$7$", what mosquitto 2.0 writes);
"$6$" and "$argon2id$" hashes work too. Make your own and never ship these.
Checking such a hash costs about 0.1 s of CPU, on purpose: the decision cache
(cache_ttl) spares it for clients that reconnect with the same password.
(midge.password_hash("pw") at load time would work as well, but leaves the
plain password in the script.)
]]

local USERS = {
  alice = "$7$210000$j1GErJv1GD8eksMe$z8RM7RugQbbtUuveeQptwGgl6QHS/9o0Bk6HhpolAFdVfyH+2ANhdO6Y1XF5Pur7RI8hy8rz687SoCQafTkeng==",
  bob = "$7$210000$KFNTEeWu06LIX+LO$2BwvCLB1PiZQ4eM+XX9bmhcOcNDppPBZpx1ToZxHcz1GmqeVSNJ4GYqYw8UASE3fViCPT/MSnzxlVozeOHomTg==",
}

function auth_on_register(client)
  local hash = client.username and USERS[client.username]
  if not hash then
    return nil -- not one of ours
  end
  if client.password and midge.password_check(hash, client.password) then
    return true
  end
  midge.log("notice", "wrong password for", client.username, "from", client.address)
  return false -- MQTT 5 clients get 0x86, bad user name or password
end
