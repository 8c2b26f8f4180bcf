-- Features and labels: one row per (customer, category) the customer browsed
-- in weeks 1 .. weeks-1 (the history); label = 1 when they bought in that
-- category in the last week (the week to predict).
--
-- Used by the training pipeline and by the monitor, so a model is always
-- scored on features built exactly as it was trained on.
-- inputs: data (interactions CSV). outputs: features (CSV).
-- params: weeks. values: rows, positive_rate.
local ctx = ...
local weeks = ctx.params.weeks
local SEGMENT_CODE = { budget = 0, mainstream = 1, premium = 2 }

local types = { customer_id = "number", week = "number", views = "number", price = "number",
                cart = "number", purchase = "number" }
local pairs_by_key, order = {}, {}   -- (customer, category) -> aggregates
local customers = {}                 -- customer -> { sessions = set, views, mobile, known_device }
for row in sluice.csv.read(ctx.inputs.data, { types = types }) do
  local cid = row.customer_id
  local c = customers[cid]
  if not c then
    c = { sessions = {}, n_sessions = 0, views = 0, mobile = 0, known_device = 0, segment = row.segment }
    customers[cid] = c
  end
  local key = cid .. "\t" .. row.category
  local a = pairs_by_key[key]
  if not a then
    a = { customer_id = cid, category = row.category, views = 0, sessions = 0, carts = 0, purchases = 0,
          spend = 0, price_sum = 0, last_visit = 0, last_purchase = 0, views_last_week = 0,
          abandoned = 0, history = false, label = 0 }
    pairs_by_key[key] = a
    order[#order + 1] = key
  end
  if row.week < weeks then
    a.history = true
    a.views = a.views + row.views
    a.sessions = a.sessions + 1
    a.carts = a.carts + row.cart
    a.purchases = a.purchases + row.purchase
    a.spend = a.spend + row.purchase * row.price
    a.price_sum = a.price_sum + row.price
    if row.week > a.last_visit then a.last_visit = row.week end
    if row.purchase == 1 and row.week > a.last_purchase then a.last_purchase = row.week end
    if row.week == weeks - 1 then a.views_last_week = a.views_last_week + row.views end
    if row.cart == 1 and row.purchase == 0 and row.week >= weeks - 2 then a.abandoned = a.abandoned + 1 end
    if not c.sessions[row.session_id] then
      c.sessions[row.session_id] = true
      c.n_sessions = c.n_sessions + 1
      if row.device ~= "" then
        c.known_device = c.known_device + 1
        if row.device == "mobile" then c.mobile = c.mobile + 1 end
      end
    end
    c.views = c.views + row.views
  elseif row.purchase == 1 then
    a.label = 1
  end
end

local header = { "customer_id", "segment", "category", "segment_code", "views", "sessions", "carts", "purchases",
                 "spend", "avg_price", "weeks_since_visit", "weeks_since_purchase", "views_last_week",
                 "abandoned_carts", "category_share", "customer_sessions", "mobile_share", "label" }
local out, positives = {}, 0
local function round(x, digits)
  local m = 10 ^ digits
  return math.floor(x * m + 0.5) / m
end
for _, key in ipairs(order) do
  local a = pairs_by_key[key]
  if a.history then
    local c = customers[a.customer_id]
    local code = SEGMENT_CODE[c.segment]
    if not code then error("unknown segment '" .. tostring(c.segment) .. "' of customer " .. a.customer_id, 0) end
    out[#out + 1] = {
      a.customer_id, c.segment, a.category, code, a.views, a.sessions, a.carts, a.purchases,
      round(a.spend, 2), round(a.price_sum / a.sessions, 2), weeks - a.last_visit,
      a.last_purchase > 0 and weeks - a.last_purchase or weeks, a.views_last_week, a.abandoned,
      round(a.views / c.views, 4), c.n_sessions,
      c.known_device > 0 and round(c.mobile / c.known_device, 4) or 0.5, a.label,
    }
    positives = positives + a.label
  end
end
-- Stable order: by customer, then category.
table.sort(out, function(x, y)
  if x[1] ~= y[1] then return x[1] < y[1] end
  return x[3] < y[3]
end)
if #out == 0 then error("no (customer, category) pair has any history before week " .. weeks, 0) end
sluice.csv.write(ctx.outputs.features, header, out)
local rate = positives / #out
sluice.metric("feature_rows", #out)
sluice.metric("positive_rate", rate)
sluice.log.info(#out, "rows,", positives, "positive (" .. string.format("%.1f%%", 100 * rate) .. ")")
return { rows = #out, positive_rate = rate }
