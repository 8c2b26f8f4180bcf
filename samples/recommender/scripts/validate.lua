-- Validates the ingested interactions against the data contract below:
-- columns and their order, types, ranges, allowed values, null rates, the
-- row count and one cross-column rule. Every problem is collected, then the
-- step fails once with all of them, so one run shows everything to fix.
--
-- inputs: data. params: weeks, min_rows, max_null_rate.
-- values: rows, customers, null_rate_<column> for nullable columns.
local ctx = ...
local p = ctx.params

local CATEGORIES = { "electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery" }
-- The contract. kind: "integer" | "number" | "text"; nullable columns may be
-- empty in up to max_null_rate of the rows.
local SCHEMA = {
  { name = "customer_id", kind = "integer", min = 1 },
  { name = "segment", kind = "text", values = { "budget", "mainstream", "premium" } },
  { name = "week", kind = "integer", min = 1, max = p.weeks },
  { name = "session_id", kind = "integer", min = 1 },
  { name = "device", kind = "text", values = { "mobile", "desktop" }, nullable = true },
  { name = "category", kind = "text", values = CATEGORIES },
  { name = "views", kind = "integer", min = 1, max = 1000 },
  { name = "price", kind = "number", min = 0.01, max = 100000 },
  { name = "cart", kind = "integer", min = 0, max = 1 },
  { name = "purchase", kind = "integer", min = 0, max = 1 },
}

local file = ctx.inputs.data:match("[^/]+$")
local problems = {}
local function problem(text) problems[#problems + 1] = text end

-- Per column: how many values broke which rule, and the first one.
local function new_stats()
  return { nulls = 0, bad = {}, order = {} }
end
local function note(st, rule, line, value)
  local b = st.bad[rule]
  if not b then
    b = { count = 0, line = line, value = value }
    st.bad[rule] = b
    st.order[#st.order + 1] = rule
  end
  b.count = b.count + 1
end

local rows = sluice.csv.read(ctx.inputs.data, { header = false })
local header = rows()
if not header then error(file .. " is empty: no header row", 0) end
local index = {}
for i, name in ipairs(header) do index[name] = i end
local checks = {}
for _, col in ipairs(SCHEMA) do
  if not index[col.name] then
    problem("missing column '" .. col.name .. "'")
  else
    local allowed
    if col.values then
      allowed = {}
      for _, v in ipairs(col.values) do allowed[v] = true end
    end
    checks[#checks + 1] = { col = col, at = index[col.name], stats = new_stats(), allowed = allowed }
  end
end
local known = {}
for _, col in ipairs(SCHEMA) do known[col.name] = true end
for _, name in ipairs(header) do
  if not known[name] then problem("unexpected column '" .. name .. "'") end
end

local n, line, customers, n_customers = 0, 1, {}, 0
local cart_at, purchase_at = index.cart, index.purchase
local no_cart, ragged = { count = 0 }, { count = 0 }
for row in rows do
  n, line = n + 1, line + 1
  if #row ~= #header then
    ragged.count = ragged.count + 1
    ragged.line = ragged.line or line
    ragged.fields = ragged.fields or #row
  end
  for _, c in ipairs(checks) do
    local col, v, st = c.col, row[c.at], c.stats
    if v == nil then -- a short row: counted above
    elseif v == "" then
      st.nulls = st.nulls + 1
    elseif col.kind == "text" then
      if c.allowed and not c.allowed[v] then note(st, "not one of " .. table.concat(col.values, ", "), line, v) end
    else
      local x = tonumber(v)
      if not x or x ~= x then
        note(st, "not a number", line, v)
      elseif col.kind == "integer" and x ~= math.floor(x) then
        note(st, "not a whole number", line, v)
      elseif col.min and x < col.min then
        note(st, "below " .. col.min, line, v)
      elseif col.max and x > col.max then
        note(st, "above " .. col.max, line, v)
      end
    end
  end
  if cart_at and purchase_at and row[purchase_at] == "1" and row[cart_at] == "0" then
    no_cart.count = no_cart.count + 1
    no_cart.line = no_cart.line or line
  end
  local cid = index.customer_id and row[index.customer_id]
  if cid and not customers[cid] then
    customers[cid] = true
    n_customers = n_customers + 1
  end
end

if ragged.count > 0 then
  problem(string.format("%d row%s without %d fields (first: line %d, %d fields)", ragged.count,
    ragged.count == 1 and "" or "s", #header, ragged.line, ragged.fields))
end
if n < p.min_rows then problem(n .. " rows, fewer than min_rows = " .. p.min_rows) end
local values = { rows = n, customers = n_customers }
for _, c in ipairs(checks) do
  local col, st = c.col, c.stats
  for _, rule in ipairs(st.order) do
    local b = st.bad[rule]
    problem(string.format("%s: %d value%s %s (first: line %d, '%s')", col.name, b.count, b.count == 1 and "" or "s",
      rule, b.line, b.value))
  end
  local rate = n > 0 and st.nulls / n or 0
  if col.nullable then
    values["null_rate_" .. col.name] = rate
    sluice.metric("null_rate_" .. col.name, rate)
    if rate > p.max_null_rate then
      problem(string.format("%s: null rate %.4g above max_null_rate = %s", col.name, rate, p.max_null_rate))
    end
  elseif st.nulls > 0 then
    problem(string.format("%s: %d empty value%s in a column that must not have any", col.name, st.nulls,
      st.nulls == 1 and "" or "s"))
  end
end
if no_cart.count > 0 then
  problem(string.format("%d purchase%s without a cart (first: line %d)", no_cart.count,
    no_cart.count == 1 and "" or "s", no_cart.line))
end

if #problems > 0 then
  for _, text in ipairs(problems) do sluice.log.error(text) end
  error(file .. " breaks the data contract: " .. table.concat(problems, "; "), 0)
end
sluice.metric("rows", n)
sluice.log.info(file .. ":", n, "rows of", n_customers, "customers pass the data contract")
return values
