-- Fan-in over the hyper-parameter sweep: every instance of step `sweep`
-- (one per matrix combination) reported its validation AUC and the round
-- early stopping kept. Picks the best; ties go to the simpler model (fewer
-- rounds x depth), then to the order of the matrix.
--
-- values: eta, max_depth, rounds, valid_auc, candidates, and the runner-up's
-- valid_auc (runner_up_auc) to show how close the sweep was.
local ctx = ...
local sweep = ctx.steps.sweep
if not sweep or #sweep == 0 then error("no sweep instances to pick from", 0) end

local best, second
local function cost(inst) return inst.values.rounds * inst.matrix.max_depth end
local function better(a, b)
  if a.values.valid_auc ~= b.values.valid_auc then return a.values.valid_auc > b.values.valid_auc end
  return cost(a) < cost(b)
end
for _, inst in ipairs(sweep) do
  local v = inst.values
  if type(v.valid_auc) ~= "number" or type(v.rounds) ~= "number" then
    error("sweep instance eta=" .. tostring(inst.matrix.eta) .. " max_depth=" .. tostring(inst.matrix.max_depth) ..
      " reported no valid_auc / rounds", 0)
  end
  sluice.log.info(string.format("eta=%s max_depth=%s: valid_auc %.4f after %d rounds", inst.matrix.eta,
    inst.matrix.max_depth, v.valid_auc, v.rounds))
  if not best or better(inst, best) then
    best, second = inst, best
  elseif not second or better(inst, second) then
    second = inst
  end
end
sluice.log.info(string.format("picked eta=%s max_depth=%s (valid_auc %.4f)", best.matrix.eta, best.matrix.max_depth,
  best.values.valid_auc))
sluice.metric("valid_auc", best.values.valid_auc)
return {
  eta = best.matrix.eta,
  max_depth = best.matrix.max_depth,
  rounds = best.values.rounds,
  valid_auc = best.values.valid_auc,
  runner_up_auc = second and second.values.valid_auc or best.values.valid_auc,
  candidates = #sweep,
}
