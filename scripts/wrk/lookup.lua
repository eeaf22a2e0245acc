-- GET /Users?filter=userName eq "…" for one of the seeded users (seed-0 … seed-N-1).
local n = tonumber(os.getenv("WRK_USERS") or "500")
request = function()
  local name = string.format("seed-%d%%40example.com", math.random(0, n - 1))
  return wrk.format("GET", wrk.path .. "/Users?filter=userName%20eq%20%22" .. name .. "%22", {["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")})
end
