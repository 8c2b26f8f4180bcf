-- Column type inference for dataset.profile: require("infer") from init.lua
-- finds this file in the plugin's folder.
local M = {}

-- "number" when every non-empty value reads as a number, "boolean" when
-- every one is true/false, else "string".
function M.column_type(values)
  local numbers, booleans, seen = true, true, 0
  for i = 1, #values do
    local v = values[i]
    if v ~= "" then
      seen = seen + 1
      if numbers and tonumber(v) == nil then numbers = false end
      local l = v:lower()
      if booleans and l ~= "true" and l ~= "false" then booleans = false end
      if not numbers and not booleans then break end
    end
  end
  if seen == 0 then return "string" end
  if numbers then return "number" end
  if booleans then return "boolean" end
  return "string"
end

return M
