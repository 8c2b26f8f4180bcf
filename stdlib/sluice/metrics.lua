-- sluice.metrics: evaluation metrics for binary classifiers and regressors,
-- over Lua arrays (1..n). Results match scikit-learn 1.2 (checked in
-- tests/engine/lua_stdlib_modules_test.cc against numbers it computed).
--
--   local metrics = require("sluice.metrics")
--   local auc = metrics.auc(labels, scores)
--
-- Labels are 0/1 or booleans; scores and probabilities are numbers (NaN is
-- refused). Every error names the function and the offending element and
-- points at the caller's line. See docs/lua.md, "sluice.metrics".
local M = {}

local floor, log, abs, sqrt = math.floor, math.log, math.abs, math.sqrt
local sort = table.sort

-- Raises "metrics.<fn>: <message>"; api() below puts the caller's line in front.
local function fail(fn, message)
  error("metrics." .. fn .. ": " .. message, 0)
end

-- The public function `f`: an error inside it is raised again at the line
-- that called it, whatever depth of helpers it came from.
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

local function count(fn, xs, what)
  if type(xs) ~= "table" then fail(fn, what .. " must be an array, not a " .. type(xs)) end
  return #xs
end

-- 0/1 labels from 0/1 numbers or booleans.
local function labels01(fn, ys)
  local n = count(fn, ys, "labels")
  local out = {}
  for i = 1, n do
    local y = ys[i]
    if y == true or y == 1 then
      out[i] = 1
    elseif y == false or y == 0 then
      out[i] = 0
    else
      fail(fn, "labels[" .. i .. "] is " .. tostring(y) .. "; labels must be 0 or 1 (or booleans)")
    end
  end
  return out, n
end

local function numbers(fn, xs, what, n)
  local m = count(fn, xs, what)
  if m ~= n then
    fail(fn, "labels has " .. n .. " elements, " .. what .. " has " .. m)
  end
  for i = 1, n do
    local x = xs[i]
    if type(x) ~= "number" or x ~= x then
      fail(fn, what .. "[" .. i .. "] is " .. (x ~= x and "nan" or tostring(x)) .. ", not a number")
    end
  end
  return xs
end

local function probabilities(fn, ps, n)
  numbers(fn, ps, "probs", n)
  for i = 1, n do
    if ps[i] < 0 or ps[i] > 1 then
      fail(fn, "probs[" .. i .. "] is " .. ps[i] .. ", outside [0, 1]")
    end
  end
  return ps
end

local function nonempty(fn, n)
  if n == 0 then fail(fn, "no data (the arrays are empty)") end
end

-- Neumaier's compensated sum, so long sums do not drift.
local function new_sum()
  local s, c = 0, 0
  return function(x)
    if x == nil then return s + c end
    local t = s + x
    if abs(s) >= abs(x) then c = c + ((s - t) + x) else c = c + ((x - t) + s) end
    s = t
  end
end

-- Indices 1..n ordered by score, descending; ties keep their input order.
local function by_score_desc(scores, n)
  local idx = {}
  for i = 1, n do idx[i] = i end
  sort(idx, function(a, b)
    local sa, sb = scores[a], scores[b]
    if sa ~= sb then return sa > sb end
    return a < b
  end)
  return idx
end

--- auc(labels, scores) -> the area under the ROC curve (ties count half),
--- as sklearn.metrics.roc_auc_score.
function M.auc(labels, scores)
  local y, n = labels01("auc", labels)
  numbers("auc", scores, "scores", n)
  local idx = by_score_desc(scores, n)
  -- Mann-Whitney: average ranks over tied groups, ascending ranks.
  local rank_sum, pos = 0, 0
  local i = 1
  while i <= n do
    local j = i
    while j < n and scores[idx[j + 1]] == scores[idx[i]] do j = j + 1 end
    -- idx[i..j] tie; in ascending order they hold ranks n-j+1 .. n-i+1.
    local avg = ((n - j + 1) + (n - i + 1)) / 2
    for k = i, j do
      if y[idx[k]] == 1 then
        rank_sum = rank_sum + avg
        pos = pos + 1
      end
    end
    i = j + 1
  end
  local neg = n - pos
  if pos == 0 or neg == 0 then
    fail("auc", "needs both classes; every label is " .. (pos == 0 and "0" or "1"))
  end
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
end

--- logloss(labels, probs [, eps]) -> mean negative log-likelihood, with
--- probabilities clipped to [eps, 1 - eps] (default 2.220446049250313e-16,
--- sklearn.metrics.log_loss's "auto" for doubles).
function M.logloss(labels, probs, eps)
  local y, n = labels01("logloss", labels)
  probabilities("logloss", probs, n)
  nonempty("logloss", n)
  eps = eps or 2.220446049250313e-16
  if type(eps) ~= "number" or not (eps > 0 and eps < 0.5) then fail("logloss", "eps must be a number in (0, 0.5)") end
  local sum = new_sum()
  for i = 1, n do
    local p = probs[i]
    if p < eps then p = eps elseif p > 1 - eps then p = 1 - eps end
    sum(y[i] == 1 and -log(p) or -log(1 - p))
  end
  return sum() / n
end

--- brier(labels, probs) -> mean squared difference (sklearn brier_score_loss).
function M.brier(labels, probs)
  local y, n = labels01("brier", labels)
  probabilities("brier", probs, n)
  nonempty("brier", n)
  local sum = new_sum()
  for i = 1, n do
    local d = probs[i] - y[i]
    sum(d * d)
  end
  return sum() / n
end

--- confusion(labels, scores [, threshold]) -> { tp, fp, tn, fn, precision,
--- recall, f1, accuracy }: a score >= threshold (default 0.5) predicts 1.
--- An undefined precision, recall or f1 (0/0) is 0, as sklearn's default.
function M.confusion(labels, scores, threshold)
  local y, n = labels01("confusion", labels)
  numbers("confusion", scores, "scores", n)
  nonempty("confusion", n)
  threshold = threshold or 0.5
  if type(threshold) ~= "number" or threshold ~= threshold then fail("confusion", "threshold must be a number") end
  local tp, fp, tn, fn = 0, 0, 0, 0
  for i = 1, n do
    if scores[i] >= threshold then
      if y[i] == 1 then tp = tp + 1 else fp = fp + 1 end
    else
      if y[i] == 1 then fn = fn + 1 else tn = tn + 1 end
    end
  end
  local precision = tp + fp > 0 and tp / (tp + fp) or 0
  local recall = tp + fn > 0 and tp / (tp + fn) or 0
  local f1 = 2 * tp + fp + fn > 0 and 2 * tp / (2 * tp + fp + fn) or 0
  return { tp = tp, fp = fp, tn = tn, fn = fn, precision = precision, recall = recall, f1 = f1,
           accuracy = (tp + tn) / n }
end

local function top_k(fn, labels, scores, k)
  local y, n = labels01(fn, labels)
  numbers(fn, scores, "scores", n)
  nonempty(fn, n)
  if type(k) ~= "number" or k < 1 or k ~= floor(k) then
    fail(fn, "k must be a whole number >= 1, not " .. tostring(k))
  end
  if k > n then k = n end
  local idx = by_score_desc(scores, n)
  local hits, positives = 0, 0
  for i = 1, n do
    if y[i] == 1 then positives = positives + 1 end
  end
  for i = 1, k do
    if y[idx[i]] == 1 then hits = hits + 1 end
  end
  return hits, k, positives
end

--- precision_at_k(labels, scores, k) -> the share of positives among the k
--- highest scores (ties broken by position: the earlier element ranks first;
--- k above the number of elements counts them all).
function M.precision_at_k(labels, scores, k)
  local hits, kk = top_k("precision_at_k", labels, scores, k)
  return hits / kk
end

--- recall_at_k(labels, scores, k) -> the share of all positives found among
--- the k highest scores (same ranking as precision_at_k).
function M.recall_at_k(labels, scores, k)
  local hits, _, positives = top_k("recall_at_k", labels, scores, k)
  if positives == 0 then fail("recall_at_k", "needs at least one positive label") end
  return hits / positives
end

--- average_precision(labels, scores) -> sum over thresholds of (R_i - R_i-1) * P_i,
--- as sklearn.metrics.average_precision_score.
function M.average_precision(labels, scores)
  local y, n = labels01("average_precision", labels)
  numbers("average_precision", scores, "scores", n)
  local positives = 0
  for i = 1, n do positives = positives + y[i] end
  if positives == 0 then fail("average_precision", "needs at least one positive label") end
  local idx = by_score_desc(scores, n)
  local tp, fp, prev_recall = 0, 0, 0
  local sum = new_sum()
  local i = 1
  while i <= n do
    local j = i
    while j < n and scores[idx[j + 1]] == scores[idx[i]] do j = j + 1 end
    for k = i, j do
      if y[idx[k]] == 1 then tp = tp + 1 else fp = fp + 1 end
    end
    local recall = tp / positives
    sum((recall - prev_recall) * (tp / (tp + fp)))
    prev_recall = recall
    i = j + 1
  end
  return sum()
end

--- calibration(labels, probs [, { bins = 10, strategy = "uniform" | "quantile" }])
--- -> bins, ece. `bins` lists the non-empty bins in order, each { lo, hi,
--- count, mean_predicted, fraction_positive } (sklearn calibration_curve's
--- prob_pred and prob_true); `ece` is the expected calibration error,
--- sum over bins of count / n * |fraction_positive - mean_predicted|.
function M.calibration(labels, probs, options)
  local y, n = labels01("calibration", labels)
  probabilities("calibration", probs, n)
  nonempty("calibration", n)
  options = options or {}
  if type(options) ~= "table" then fail("calibration", "options must be a table") end
  local nbins = options.bins or 10
  if type(nbins) ~= "number" or nbins < 1 or nbins ~= floor(nbins) then
    fail("calibration", "bins must be a whole number >= 1")
  end
  local strategy = options.strategy or "uniform"
  local edges = {}
  if strategy == "uniform" then
    for i = 0, nbins do edges[i + 1] = i / nbins end
  elseif strategy == "quantile" then
    local qs = {}
    for i = 0, nbins do qs[i + 1] = i / nbins end
    edges = sluice.stats.quantile(probs, qs)
  else
    fail("calibration", "strategy must be \"uniform\" or \"quantile\", not " .. tostring(strategy))
  end
  -- A probability belongs to the first bin whose inner upper edge is >= it
  -- (numpy.searchsorted over the inner edges, as sklearn does).
  local counts, sums, trues = {}, {}, {}
  for b = 1, nbins do counts[b], sums[b], trues[b] = 0, new_sum(), 0 end
  for i = 1, n do
    local p = probs[i]
    local lo, hi = 1, nbins  -- binary search over inner edges edges[2..nbins]
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      if edges[mid + 1] >= p then hi = mid else lo = mid + 1 end
    end
    counts[lo] = counts[lo] + 1
    sums[lo](p)
    trues[lo] = trues[lo] + y[i]
  end
  local out, ece = {}, new_sum()
  for b = 1, nbins do
    if counts[b] > 0 then
      local mean_p = sums[b]() / counts[b]
      local frac = trues[b] / counts[b]
      out[#out + 1] = { lo = edges[b], hi = edges[b + 1], count = counts[b], mean_predicted = mean_p,
                        fraction_positive = frac }
      ece(counts[b] / n * abs(frac - mean_p))
    end
  end
  return out, ece()
end

local function regression(fn, actual, predicted)
  local n = count(fn, actual, "actual")
  numbers(fn, actual, "actual", n)
  local m = count(fn, predicted, "predicted")
  if m ~= n then fail(fn, "actual has " .. n .. " elements, predicted has " .. m) end
  numbers(fn, predicted, "predicted", n)
  nonempty(fn, n)
  return n
end

--- rmse(actual, predicted) -> the root mean squared error.
function M.rmse(actual, predicted)
  local n = regression("rmse", actual, predicted)
  local sum = new_sum()
  for i = 1, n do
    local d = predicted[i] - actual[i]
    sum(d * d)
  end
  return sqrt(sum() / n)
end

--- mae(actual, predicted) -> the mean absolute error.
function M.mae(actual, predicted)
  local n = regression("mae", actual, predicted)
  local sum = new_sum()
  for i = 1, n do sum(abs(predicted[i] - actual[i])) end
  return sum() / n
end

for name, f in pairs(M) do M[name] = api(f) end

return M
