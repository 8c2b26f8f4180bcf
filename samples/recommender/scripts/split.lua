-- Splits the features by customer into train / valid / test (70/15/15):
-- all rows of one customer land in one split, so no customer is both learned
-- from and judged on. The assignment hashes the customer id with params.seed,
-- so it is the same on every run and machine.
--
-- inputs: features. outputs: train, valid, test. params: seed.
-- values: n_train, n_valid, n_test, positive_rate_train.
local ctx = ...
local seed = ctx.params.seed

local function bucket(customer_id)
  -- Knuth's multiplicative hash, kept below 2^53 so doubles stay exact.
  local h = (customer_id * 2654435761 + seed * 40503) % 4294967296
  h = (h * 40503 + 12345) % 1000003
  return h % 100
end

local rows = sluice.csv.read(ctx.inputs.features, { header = false })
local header = rows()
local id_at, label_at
for i, name in ipairs(header) do
  if name == "customer_id" then id_at = i end
  if name == "label" then label_at = i end
end
if not id_at or not label_at then error("features need columns customer_id and label", 0) end

local parts = { train = {}, valid = {}, test = {} }
local positives = { train = 0, valid = 0, test = 0 }
for row in rows do
  local b = bucket(tonumber(row[id_at]))
  local part = b < 70 and "train" or (b < 85 and "valid" or "test")
  local t = parts[part]
  t[#t + 1] = row
  if row[label_at] == "1" then positives[part] = positives[part] + 1 end
end
local values = {}
for _, part in ipairs({ "train", "valid", "test" }) do
  local t = parts[part]
  if #t == 0 then error("the " .. part .. " split is empty: too few customers", 0) end
  sluice.csv.write(ctx.outputs[part], header, t)
  values["n_" .. part] = #t
  sluice.metric("rows_" .. part, #t)
end
values.positive_rate_train = positives.train / #parts.train
sluice.log.info("train", #parts.train, "valid", #parts.valid, "test", #parts.test)
return values
