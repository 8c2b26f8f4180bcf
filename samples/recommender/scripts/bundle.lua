-- Packages what production needs into one folder, the artifact the registry
-- versions and the deployer ships:
--   model.json      the XGBoost model
--   reference.csv   the training features: the monitor's drift reference
--   card.json       hyper-parameters, features, metrics, fairness, data
-- and reports the model's metrics as this step's metrics, which
-- registry.register takes for the new version (the promotion gate reads them).
--
-- When the pipeline challenged production (params.compare_with_production),
-- `champion_eval` scored the production model on this run's test split and
-- its AUC is recorded as champion_auc: both models judged on the same rows.
local ctx = ...
local out = ctx.outputs.bundle
local ev = ctx.steps.evaluate.values
local fair = ctx.steps.fairness.values
local pick = ctx.steps.pick.values
local train = ctx.steps.train.values
local champion = ctx.steps.champion_eval and ctx.steps.champion_eval.values or {}

sluice.fs.write(out .. "/model.json", sluice.fs.read(ctx.inputs.model))
sluice.fs.write(out .. "/reference.csv", sluice.fs.read(ctx.inputs.reference))

local metrics = {
  auc = ev.auc,
  logloss = ev.logloss,
  brier = ev.brier,
  precision_at_k = ev.precision_at_k,
  recall_at_k = ev.recall_at_k,
  ece = ev.ece,
  valid_auc = pick.valid_auc,
  fairness_min_ratio = fair.min_ratio,
  fair = fair.fair and 1 or 0,
  champion_auc = champion.auc, -- nil unless production was challenged
}
local names = {}
for name in pairs(metrics) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
  if type(metrics[name]) ~= "number" then
    if name ~= "champion_auc" then error("upstream value for metric '" .. name .. "' is missing", 0) end
  else
    sluice.metric(name, metrics[name])
  end
end

local card = {
  model = "recommender",
  task = "will this customer buy in this category next week",
  params = { eta = pick.eta, max_depth = pick.max_depth, rounds = pick.rounds, seed = ctx.params.seed },
  features = train.features,
  metrics = metrics,
  fairness = { group = "segment", worst_group = fair.worst_group, min_ratio = fair.min_ratio, fair = fair.fair },
  data = { seed = ctx.params.seed, customers = ctx.params.customers, weeks = ctx.params.weeks,
           drift = ctx.params.drift },
  run = ctx.run.id,
}
sluice.fs.write(out .. "/card.json", sluice.json.encode(card, { indent = 2 }) .. "\n")
sluice.log.info(string.format("bundle: test auc %.4f%s, fairness min ratio %.3f (%s)", metrics.auc,
  metrics.champion_auc and string.format(" (production on the same rows: %.4f)", metrics.champion_auc) or "",
  metrics.fairness_min_ratio, fair.worst_group))
return { auc = metrics.auc, champion_auc = metrics.champion_auc or "none", fair = fair.fair }
