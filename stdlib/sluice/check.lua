-- sluice.check: assertions about a dataset before anything trains on it —
-- its columns and their types, value ranges, allowed values, uniqueness,
-- null rates and row counts. Every failed check is reported, not only the
-- first, in one error (or in the report, with raise = false).
--
--   local check = require("sluice.check")
--   local report = check.csv(ctx.inputs.data, {
--     columns = { id = "integer", age = "number", churned = "boolean", city = "string" },
--     range = { age = { 0, 120 } },
--     max_null_rate = { age = 0.05 },
--     min_rows = 100,
--   })
--
-- See docs/lua.md, "sluice.check".
local M = {}

local floor, huge = math.floor, math.huge
local concat, sort = table.concat, table.sort

local OPTIONS = { "allowed", "columns", "exact", "max_null_rate", "max_rows", "min_rows", "name", "nulls", "raise",
                  "range", "unique" }
local TYPES = { string = true, number = true, integer = true, boolean = true }
local MAX_LISTED = 10  -- failures named in the error; the report keeps them all

local function fail(fn, message)
  error("check." .. fn .. ": " .. message, 0)
end

local function api(f)
  return function(...)
    local ok, a, b = pcall(f, ...)
    if not ok then
      -- The caller's line replaces a position inside this module.
      if type(a) == "string" then a = a:gsub("^stdlib/sluice/[%w_]+%.lua:%d+: ", "") end
      error(a, 2)
    end
    return a, b
  end
end

local function quote(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  return tostring(v)
end

local function list(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = quote(v) end
  return concat(out, ", ")
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- A field's value as `kind`, or nil and false when it does not read as one.
-- Strings follow sluice.csv's rules: decimal numbers (spaces around ignored),
-- inf and nan; booleans true/false/1/0 in any case.
local function parse_number(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local s = v:match("^%s*(.-)%s*$")
  local lower = s:lower()
  if lower == "inf" or lower == "+inf" or lower == "infinity" then return huge end
  if lower == "-inf" or lower == "-infinity" then return -huge end
  if lower == "nan" then return 0 / 0 end
  if not s:match("^[+-]?%d*%.?%d*[eE]?[+-]?%d*$") or not s:match("%d") then return nil end
  return tonumber(s)
end

local function convert(kind, v)
  if kind == "string" then return v, true end
  if kind == "number" then
    local x = parse_number(v)
    return x, x ~= nil
  end
  if kind == "integer" then
    local x = parse_number(v)
    if x == nil or x ~= floor(x) or x ~= x or x == huge or x == -huge then return nil, false end
    return x, true
  end
  -- boolean
  if type(v) == "boolean" then return v, true end
  if type(v) == "number" then
    if v == 1 or v == 0 then return v == 1, true end
    return nil, false
  end
  local s = type(v) == "string" and v:lower() or ""
  if s == "true" or s == "1" then return true, true end
  if s == "false" or s == "0" then return false, true end
  return nil, false
end

local function check_spec(fn, spec)
  if type(spec) ~= "table" then fail(fn, "the checks must be a table, not a " .. type(spec)) end
  for k in pairs(spec) do
    local known = false
    for _, o in ipairs(OPTIONS) do known = known or o == k end
    if not known then fail(fn, "unknown option " .. quote(k) .. " (options: " .. concat(OPTIONS, ", ") .. ")") end
  end
  for name, kind in pairs(spec.columns or {}) do
    if type(name) == "number" then
      fail(fn, "columns maps names to types, e.g. { age = \"number\" }; found the list entry " .. quote(kind))
    end
    if not TYPES[kind] then
      fail(fn, "column " .. quote(name) .. " has type " .. quote(kind) .. "; use string, number, integer or boolean")
    end
  end
  for name, r in pairs(spec.range or {}) do
    if type(r) ~= "table" then fail(fn, "range of " .. quote(name) .. " must be { min, max } or { min = x, max = y }") end
  end
  if spec.max_null_rate ~= nil and type(spec.max_null_rate) ~= "number" and type(spec.max_null_rate) ~= "table" then
    fail(fn, "max_null_rate must be a number (every column) or a table of column = rate")
  end
end

-- One column's running tally.
local function new_column(name, kind)
  return { name = name, kind = kind, nulls = 0, bad = 0, first_bad = nil, outside = 0, first_outside = nil,
           not_allowed = 0, first_not_allowed = nil, duplicates = 0, first_duplicate = nil, seen = nil,
           min = nil, max = nil, sum = 0, count = 0 }
end

local function core(fn, header, next_row, spec, name)
  check_spec(fn, spec)
  local failures = {}
  local function failed(message) failures[#failures + 1] = message end

  local index = {}
  for i, h in ipairs(header) do
    if index[h] == nil then index[h] = i end
  end
  local nulls = {}
  for _, v in ipairs(spec.nulls or { "" }) do nulls[v] = true end

  -- The columns something is asked about, with their type.
  local wanted = {}
  local function want(col, kind)
    if wanted[col] == nil then wanted[col] = kind or "string" elseif kind and wanted[col] == "string" then wanted[col] = kind end
  end
  for col, kind in pairs(spec.columns or {}) do want(col, kind) end
  for col in pairs(spec.range or {}) do want(col, (spec.columns or {})[col] or "number") end
  for col in pairs(spec.allowed or {}) do want(col) end
  for _, col in ipairs(spec.unique or {}) do want(col) end
  if type(spec.max_null_rate) == "table" then
    for col in pairs(spec.max_null_rate) do want(col) end
  end

  local columns, order = {}, {}
  for _, col in ipairs(sorted_keys(wanted)) do
    if index[col] == nil then
      local hint = ""
      for _, h in ipairs(header) do
        if h:lower() == col:lower() then hint = " (the header has " .. quote(h) .. ")" end
      end
      failed("missing column " .. quote(col) .. hint)
    else
      columns[col] = new_column(col, wanted[col])
      order[#order + 1] = col
    end
  end
  if spec.exact then
    for _, h in ipairs(header) do
      if not (spec.columns or {})[h] then failed("unexpected column " .. quote(h) .. " (exact = true)") end
    end
  end
  -- Every column gets null counts in the report, asked about or not.
  for _, h in ipairs(header) do
    if columns[h] == nil then
      columns[h] = new_column(h, nil)
      order[#order + 1] = h
    end
  end

  local ranges, allowed, unique = {}, {}, {}
  for col, r in pairs(spec.range or {}) do ranges[col] = { r.min or r[1] or -huge, r.max or r[2] or huge } end
  for col, vs in pairs(spec.allowed or {}) do
    local set = {}
    for _, v in ipairs(vs) do set[tostring(v)] = true end
    allowed[col] = set
  end
  for _, col in ipairs(spec.unique or {}) do unique[col] = {} end

  local rows = 0
  for row in next_row do
    rows = rows + 1
    for _, col in ipairs(order) do
      local c = columns[col]
      local raw = row[index[col]]
      if raw == nil or nulls[raw] then
        c.nulls = c.nulls + 1
      elseif c.kind == nil then
        -- only counted
      else
        local v, ok = convert(c.kind, raw)
        if not ok then
          c.bad = c.bad + 1
          c.first_bad = c.first_bad or { raw, rows }
        elseif v ~= v then
          c.nulls = c.nulls + 1  -- NaN is a missing value
        else
          if c.kind == "number" or c.kind == "integer" then
            if c.min == nil or v < c.min then c.min = v end
            if c.max == nil or v > c.max then c.max = v end
            c.sum = c.sum + v
            c.count = c.count + 1
            local r = ranges[col]
            if r and (v < r[1] or v > r[2]) then
              c.outside = c.outside + 1
              c.first_outside = c.first_outside or { raw, rows }
            end
          end
          local a = allowed[col]
          if a and not a[tostring(v)] and not a[tostring(raw)] then
            c.not_allowed = c.not_allowed + 1
            c.first_not_allowed = c.first_not_allowed or { raw, rows }
          end
          local u = unique[col]
          if u then
            local key = tostring(v)
            if u[key] then
              c.duplicates = c.duplicates + 1
              c.first_duplicate = c.first_duplicate or { raw, rows }
            else
              u[key] = true
            end
          end
        end
      end
    end
  end

  local report = { name = name, rows = rows, columns = {}, failures = failures }
  local kind_one = { number = "a number", integer = "an integer", boolean = "a boolean" }
  local kind_many = { number = "numbers", integer = "integers", boolean = "booleans" }
  local function values(n) return n == 1 and "1 value" or n .. " values" end
  local function first(f) return " (first: " .. quote(f[1]) .. " in row " .. f[2] .. ")" end
  for _, col in ipairs(order) do
    local c = columns[col]
    local entry = { nulls = c.nulls, null_rate = rows > 0 and c.nulls / rows or 0, type = c.kind }
    if c.count > 0 then
      entry.min, entry.max, entry.mean = c.min, c.max, c.sum / c.count
    end
    report.columns[col] = entry
    local q = "column " .. quote(col) .. ": "
    if c.bad > 0 then
      failed(q .. (c.bad == 1 and "1 value is not " .. kind_one[c.kind] or c.bad .. " values are not " .. kind_many[c.kind]) ..
             first(c.first_bad))
    end
    if c.outside > 0 then
      local r = ranges[col]
      failed(q .. values(c.outside) .. " outside [" .. r[1] .. ", " .. r[2] .. "]" .. first(c.first_outside))
    end
    if c.not_allowed > 0 then
      failed(q .. values(c.not_allowed) .. " not allowed" .. first(c.first_not_allowed) .. "; allowed: " ..
             list(spec.allowed[col]))
    end
    if c.duplicates > 0 then
      failed(q .. c.duplicates .. " duplicate" .. (c.duplicates == 1 and "" or "s") .. first(c.first_duplicate))
    end
    local limit = spec.max_null_rate
    if type(limit) == "table" then limit = limit[col] end
    if limit and rows > 0 and entry.null_rate > limit then
      failed(q .. "null rate " .. entry.null_rate .. " (" .. c.nulls .. " of " .. rows .. " rows) is above " .. limit)
    end
  end
  if spec.min_rows and rows < spec.min_rows then failed(rows .. " rows, fewer than min_rows = " .. spec.min_rows) end
  if spec.max_rows and rows > spec.max_rows then failed(rows .. " rows, more than max_rows = " .. spec.max_rows) end

  report.ok = #failures == 0
  if not report.ok and spec.raise ~= false then
    local shown = {}
    for i = 1, math.min(#failures, MAX_LISTED) do shown[i] = failures[i] end
    local more = #failures > MAX_LISTED and "; and " .. (#failures - MAX_LISTED) .. " more" or ""
    fail(fn, name .. ": " .. #failures .. (#failures == 1 and " check failed: " or " checks failed: ") ..
             concat(shown, "; ") .. more)
  end
  return report
end

--- csv(path, checks) -> report: reads the CSV (with a header) through
--- sluice.csv, so sluice.fs's path rules apply. Raises one error listing
--- every failed check unless checks.raise == false.
function M.csv(path, spec)
  if type(path) ~= "string" then fail("csv", "path must be a string, not a " .. type(path)) end
  spec = spec or {}
  local rows = sluice.csv.read(path, { header = false })
  local header = rows()
  if header == nil then fail("csv", path .. " is empty: no header") end
  local name = (type(spec) == "table" and spec.name) or path:match("[^/]*$")
  return core("csv", header, rows, spec, name)
end

--- rows(header, rows, checks) -> report: the same checks over rows in
--- memory, each an array aligned with `header` (an array of names).
function M.rows(header, rows, spec)
  if type(header) ~= "table" or type(rows) ~= "table" then fail("rows", "needs a header array and an array of rows") end
  local i = 0
  local function next_row()
    i = i + 1
    return rows[i]
  end
  spec = spec or {}
  return core("rows", header, next_row, spec, (type(spec) == "table" and spec.name) or "rows")
end

for name, f in pairs(M) do M[name] = api(f) end

return M
