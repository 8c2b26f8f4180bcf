-- The dataset plugin: returns its actions, each `function(ctx, args)`
-- returning the step's values. ctx is what a Lua step sees (ctx.inputs,
-- ctx.outputs, ctx.params, ...); args is the step's `with`, defaults applied.
local infer = require("infer")
local check = require("sluice.check")

local actions = {}

-- Reads the whole CSV as text: the header and the rows (arrays).
local function read_rows(path)
  local rows = {}
  local it = sluice.csv.read(path, { header = false })
  local header = it()
  if header == nil then error("dataset: " .. path .. " is empty: no header", 0) end
  for row in it do rows[#rows + 1] = row end
  return header, rows
end

function actions.profile(ctx, args)
  local header, rows = read_rows(args.data)
  local n = #rows
  local report = { rows = n, columns = {} }
  local max_null_rate, worst = 0, nil
  for c, name in ipairs(header) do
    local values, present = {}, {}
    local counts, distinct = {}, 0
    for r = 1, n do
      local v = rows[r][c]
      values[r] = v
      if v ~= "" then
        present[#present + 1] = v
        if counts[v] == nil then
          counts[v] = 0
          distinct = distinct + 1
        end
        counts[v] = counts[v] + 1
      end
    end
    local col = { name = name, type = infer.column_type(values), nulls = n - #present, distinct = distinct }
    col.null_rate = n > 0 and col.nulls / n or 0
    if col.null_rate > max_null_rate or worst == nil then max_null_rate, worst = col.null_rate, name end
    if col.type == "number" and #present > 0 then
      local xs = {}
      for i, v in ipairs(present) do xs[i] = tonumber(v) end
      col.min, col.max = sluice.stats.min(xs), sluice.stats.max(xs)
      col.mean = sluice.stats.mean(xs)
      col.stddev = #xs > 1 and sluice.stats.stddev(xs) or 0
      local q = sluice.stats.quantile(xs, { 0.05, 0.5, 0.95 })
      col.p05, col.median, col.p95 = q[1], q[2], q[3]
    else
      local top = {}
      for v, k in pairs(counts) do top[#top + 1] = { value = v, count = k } end
      table.sort(top, function(a, b)
        if a.count ~= b.count then return a.count > b.count end
        return a.value < b.value
      end)
      for i = #top, args.top + 1, -1 do top[i] = nil end
      col.top = top
    end
    report.columns[c] = col
    sluice.log.info(string.format("%-16s %-8s nulls %5.1f%%  distinct %d", name, col.type, 100 * col.null_rate, distinct))
  end
  if ctx.outputs.report then sluice.fs.write(ctx.outputs.report, sluice.json.encode(report, { indent = 2 })) end
  sluice.metric("rows", n)
  return { rows = n, columns = #header, max_null_rate = max_null_rate, worst_column = worst }
end

function actions.check(ctx, args)
  local spec = {
    columns = args.columns, exact = args.exact, range = args.range, allowed = args.allowed,
    unique = args.unique, max_null_rate = args.max_null_rate, min_rows = args.min_rows,
  }
  local report = check.csv(args.data, spec)
  return { rows = report.rows, ok = report.ok }
end

-- Fisher-Yates with math.random (seeded by the caller).
local function shuffle(list)
  for i = #list, 2, -1 do
    local j = math.random(i)
    list[i], list[j] = list[j], list[i]
  end
end

function actions.split(ctx, args)
  if not ctx.outputs.train or not ctx.outputs.test then
    error("dataset.split: declare the outputs 'train' and 'test' in the step, e.g. "
          .. "outputs = { train = \"train.csv\", test = \"test.csv\" }", 0)
  end
  local f = args.test_fraction
  if f <= 0 or f >= 1 then error("dataset.split: test_fraction must be between 0 and 1, not " .. f, 0) end
  local header, rows = read_rows(args.data)
  -- Strata: row indices by the stratify column's value (one stratum without it).
  local strata, keys = {}, {}
  local column
  if args.stratify then
    for c, name in ipairs(header) do
      if name == args.stratify then column = c end
    end
    if not column then error("dataset.split: stratify column '" .. args.stratify .. "' is not in " .. args.data, 0) end
  end
  for r = 1, #rows do
    local key = column and rows[r][column] or ""
    if not strata[key] then
      strata[key] = {}
      keys[#keys + 1] = key
    end
    table.insert(strata[key], r)
  end
  table.sort(keys)
  math.randomseed(args.seed)
  local train, test = {}, {}
  for _, key in ipairs(keys) do
    local members = strata[key]
    shuffle(members)
    local n_test = math.floor(#members * f + 0.5)
    for i, r in ipairs(members) do
      if i <= n_test then test[#test + 1] = r else train[#train + 1] = r end
    end
  end
  -- Rows keep their file order within each set.
  table.sort(train)
  table.sort(test)
  local function pick(idx)
    local out = {}
    for i, r in ipairs(idx) do out[i] = rows[r] end
    return out
  end
  sluice.csv.write(ctx.outputs.train, header, pick(train))
  sluice.csv.write(ctx.outputs.test, header, pick(test))
  sluice.log.info("split " .. #rows .. " rows: " .. #train .. " train, " .. #test .. " test" ..
                  (column and (" (stratified by " .. args.stratify .. ", " .. #keys .. " strata)") or ""))
  return { train_rows = #train, test_rows = #test, strata = #keys }
end

return actions
