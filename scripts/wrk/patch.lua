-- PATCH /Users/{id}: replace two attributes (Entra's shape), on one of the seeded ids.
local ids = {}
for line in io.lines(os.getenv("WRK_IDS")) do table.insert(ids, line) end
local counter = 0
request = function()
  counter = counter + 1
  local id = ids[math.random(1, #ids)]
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['
    .. '{"op":"Replace","path":"displayName","value":"Patched ' .. counter .. '"},'
    .. '{"op":"Replace","path":"title","value":"Title ' .. counter .. '"}]}'
  return wrk.format("PATCH", wrk.path .. "/Users/" .. id, {["Content-Type"] = "application/scim+json", ["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")}, body)
end
