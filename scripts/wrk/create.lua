-- POST /Users with an Entra-shaped user; a unique userName per request (thread id, counter).
local counter = 0
local next_id = 0
-- Each thread gets its own number (a global in its Lua state), the run the start time.
function setup(thread) thread:set("tid", next_id); next_id = next_id + 1 end
local run = os.time()
request = function()
  counter = counter + 1
  local name = string.format("w%d-%d-%d@example.com", run, tid or 0, counter)
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],'
    .. '"externalId":"' .. name .. '","userName":"' .. name .. '","active":true,'
    .. '"displayName":"Wrk User","name":{"givenName":"Wrk","familyName":"User","formatted":"Wrk User"},'
    .. '"emails":[{"primary":true,"type":"work","value":"' .. name .. '"}],'
    .. '"title":"Engineer","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","employeeNumber":"' .. counter .. '"}}'
  return wrk.format("POST", wrk.path .. "/Users", {["Content-Type"] = "application/scim+json", ["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")}, body)
end
