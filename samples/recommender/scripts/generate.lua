-- Simulates the shop: a deterministic export of e-commerce interactions.
--
-- One row per (session, category browsed): who (customer_id, segment), when
-- (week, session_id), how (device, views, price seen) and what came of it
-- (cart, purchase). The same params give the same bytes on any machine
-- (LuaJIT's math.random is seeded from params.seed).
--
-- params: seed, customers, weeks, drift (0 = the world the first model was
-- trained in; 1 = fully shifted: more budget shoppers, mostly on mobile,
-- prices up 40% and shoppers more sensitive to them, and a retargeting
-- campaign: an abandoned cart now brings its shopper back to buy, while
-- repeat purchases and last week's visit matter less).
-- outputs: data (CSV). values: rows, customers (with at least one session),
-- sessions.
local ctx = ...
local p = ctx.params
local seed, n_customers, weeks, drift = p.seed, p.customers, p.weeks, p.drift
if drift < 0 or drift > 1 then error("drift must be from 0 to 1, not " .. drift, 0) end
if weeks < 2 then error("weeks must be at least 2 (history, then the week to predict)", 0) end

local CATEGORIES = {
  { name = "electronics", price = 180, spread = 0.6, pop = 0.10 },
  { name = "fashion", price = 45, spread = 0.5, pop = 0.20 },
  { name = "home", price = 60, spread = 0.6, pop = 0.14 },
  { name = "beauty", price = 25, spread = 0.4, pop = 0.14 },
  { name = "sports", price = 55, spread = 0.5, pop = 0.10 },
  { name = "books", price = 15, spread = 0.3, pop = 0.12 },
  { name = "toys", price = 30, spread = 0.5, pop = 0.08 },
  { name = "grocery", price = 12, spread = 0.3, pop = 0.12 },
}
-- share: of customers at drift 0 and at drift 1; activity: sessions a week;
-- sensitivity: to price; propensity: to buy at all.
local SEGMENTS = {
  { name = "budget", share = 0.45, shifted = 0.70, activity = 1.1, sensitivity = 1.4, propensity = -0.1 },
  { name = "mainstream", share = 0.40, shifted = 0.24, activity = 1.4, sensitivity = 1.0, propensity = 0.0 },
  { name = "premium", share = 0.15, shifted = 0.06, activity = 1.7, sensitivity = 0.6, propensity = 0.15 },
}
-- How the world moves with drift.
local inflation = 1 + 0.4 * drift
local p_mobile = 0.50 + 0.35 * drift
local recency_pull = 1.5 * (1 - drift) + 0.2 * drift -- last week's category again
local repeat_pull = 1.5 * (1 - drift)                -- a category they bought in before
local cart_pull = 0.2 + 4.0 * drift                  -- an abandoned cart brings them back ...
local cart_close = 2.0 * drift                       -- ... and then they buy
local sensitivity_scale = 1 + drift

math.randomseed(seed)
local random, exp, log, sqrt, cos, floor = math.random, math.exp, math.log, math.sqrt, math.cos, math.floor

local function normal()
  return sqrt(-2 * log(1 - random())) * cos(2 * math.pi * random())
end
local function poisson(lambda)
  local limit, k, prod = exp(-lambda), 0, random()
  while prod > limit do
    k = k + 1
    prod = prod * random()
  end
  return k
end
local function sigmoid(x) return 1 / (1 + exp(-x)) end
local function pick(weights, total)
  local r, acc = random() * total, 0
  for i = 1, #weights do
    acc = acc + weights[i]
    if r < acc then return i end
  end
  return #weights
end

local rows, n, session_id, active = {}, 0, 0, 0
for customer_id = 1, n_customers do
  local first_session = session_id
  -- Who this customer is.
  local r, seg = random(), SEGMENTS[#SEGMENTS]
  local acc = 0
  for _, s in ipairs(SEGMENTS) do
    acc = acc + (1 - drift) * s.share + drift * s.shifted
    if r < acc then seg = s break end
  end
  local activity = seg.activity * exp(0.6 * normal() - 0.18) * (1 - 0.2 * drift)
  local loyalty = normal()
  local sensitivity = seg.sensitivity * sensitivity_scale
  local affinity, total = {}, 0
  for i, c in ipairs(CATEGORIES) do
    affinity[i] = c.pop * exp(normal())
    total = total + affinity[i]
  end
  for _ = 1, 2 do -- two favourite categories
    local i = floor(random() * #CATEGORIES) + 1
    affinity[i] = affinity[i] + total
  end
  local visited_last, abandoned, abandoned_before, bought = {}, {}, {}, {}
  for week = 1, weeks do
    local visited_now, abandoned_now = {}, {}
    for _ = 1, poisson(activity) do
      session_id = session_id + 1
      local device = random() < p_mobile and "mobile" or "desktop"
      if random() < 0.01 then device = "" end -- tracking blocked: unknown device
      local weights, wsum = {}, 0
      for i = 1, #CATEGORIES do
        local w = affinity[i] * (1 + recency_pull * (visited_last[i] or 0)) * (1 + repeat_pull * (bought[i] or 0))
          * (1 + cart_pull * math.max(abandoned[i] or 0, abandoned_before[i] or 0))
        weights[i], wsum = w, wsum + w
      end
      local browsed = random() < 0.3 and 2 or 1
      for _ = 1, browsed do
        local i = pick(weights, wsum)
        wsum = wsum - weights[i]
        weights[i] = 0
        local cat = CATEGORIES[i]
        local views = 1 + poisson(1 + 6 * affinity[i] / total)
        local price = floor(cat.price * exp(cat.spread * normal()) * inflation * 100 + 0.5) / 100
        local dear = log(price / cat.price) -- against the undrifted list price
        local returning = math.max(abandoned[i] or 0, abandoned_before[i] or 0)
        local cart = random() < sigmoid(-1.4 + 0.25 * views + 0.8 * loyalty + seg.propensity - 0.5 * sensitivity * dear
          + cart_close * returning)
        local purchase = cart and random() < sigmoid(0.2 + 1.0 * loyalty + seg.propensity - sensitivity * dear
          + 0.8 * (1 - drift) * (bought[i] or 0) + cart_close * returning - (device == "mobile" and 0.4 * drift or 0))
        visited_now[i] = 1
        if cart and not purchase then abandoned_now[i] = 1 end
        if purchase then bought[i] = 1 end
        n = n + 1
        rows[n] = { customer_id, seg.name, week, session_id, device, cat.name, views, price,
                    cart and 1 or 0, purchase and 1 or 0 }
      end
    end
    visited_last, abandoned_before, abandoned = visited_now, abandoned, abandoned_now
  end
  if session_id > first_session then active = active + 1 end
end

sluice.csv.write(ctx.outputs.data,
  { "customer_id", "segment", "week", "session_id", "device", "category", "views", "price", "cart", "purchase" }, rows)
sluice.metric("rows", n)
sluice.log.info("generated", n, "interactions of", active, "customers over", weeks, "weeks, drift", drift)
return { rows = n, customers = active, sessions = session_id }
