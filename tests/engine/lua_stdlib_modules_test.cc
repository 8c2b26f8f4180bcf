// The Lua modules of stdlib/ (embedded in the binary): require() finds them,
// sluice.metrics matches scikit-learn (reference numbers from
// tests/engine/metrics_reference.py, pasted here), sluice.check reports
// every failed check of a dataset.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/lua_host.h"
#include "stdlib/embedded.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;

namespace {

struct Fixture {
  LuaHost host;
  sluice::test::ScratchDir root;
  LuaStepInput in;

  Fixture() {
    std::filesystem::create_directories(root / "work");
    in.workdir = root / "work";
    in.run = {"20260101-000000.000-abcd1234", "check", 1};
  }

  LuaStepResult run(const std::string& code) {
    in.code = code;
    return host.run_step(in);
  }

  std::map<std::string, std::string> values(const std::string& code) {
    LuaStepResult r = run(code);
    INFO(r.error << "\n" << r.traceback);
    REQUIRE(r.ok);
    return r.values;
  }

  std::string error_of(const std::string& code) {
    LuaStepResult r = run(code);
    REQUIRE_FALSE(r.ok);
    return r.error;
  }

  void write(const std::string& name, const std::string& text) { std::ofstream(root / ("work/" + name)) << text; }
};

// The reference data set of metrics_reference.py, built in Lua the same way.
const std::string kDataset = R"lua(
local metrics = require("sluice.metrics")
local function uniforms(seed, n)
  local s, out = seed, {}
  for i = 1, n do
    s = s * 16807 % 2147483647
    out[i] = s / 2147483647
  end
  return out
end
local u = uniforms(12345, 1000)
local labels, scores = {}, {}
for i = 1, 500 do
  scores[i] = math.floor(u[2 * i - 1] * 50) / 50
  labels[i] = u[2 * i] < 0.2 + 0.6 * scores[i] and 1 or 0
end
)lua";

double num(const std::map<std::string, std::string>& v, const std::string& key) {
  INFO(key);
  REQUIRE(v.count(key));
  return std::stod(v.at(key));
}

}  // namespace

TEST_CASE("stdlib modules: the embedded files are the modules require() finds") {
  std::vector<std::string> names = stdlib::module_names();
  CHECK(names == std::vector<std::string>{"sluice.check", "sluice.metrics"});
  REQUIRE(stdlib::find_module("sluice.metrics"));
  CHECK(stdlib::find_module("sluice.metrics")->path == "sluice/metrics.lua");
  CHECK(stdlib::find_module("sluice/metrics") == nullptr);
  CHECK(stdlib::find_module("metrics") == nullptr);

  Fixture f;
  // Loaded once per step, into the step's own environment.
  CHECK(f.values("local m = require('sluice.metrics'); assert(require('sluice.metrics') == m)\n"
                 "m.auc = nil\nreturn { v = type(require('sluice.check').csv) }")["v"] == "function");
  CHECK(f.values("return { v = type(require('sluice.metrics').auc) }")["v"] == "function");
  CHECK(f.error_of("require('sluice.nope')") == "lua_inline:check:1: require: module 'sluice.nope' is not available in the sluice sandbox");
}

TEST_CASE("stdlib modules: sluice.metrics matches scikit-learn 1.2 on 500 scored examples") {
  Fixture f;
  auto v = f.values(kDataset + R"lua(
local c = metrics.confusion(labels, scores, 0.5)
local out = {
  auc = metrics.auc(labels, scores), logloss = metrics.logloss(labels, scores), brier = metrics.brier(labels, scores),
  ap = metrics.average_precision(labels, scores),
  precision = c.precision, recall = c.recall, f1 = c.f1, accuracy = c.accuracy, tp = c.tp, fp = c.fp, tn = c.tn, fn = c.fn,
}
for _, k in ipairs({ 1, 10, 50, 499 }) do
  out["p_at_" .. k] = metrics.precision_at_k(labels, scores, k)
  out["r_at_" .. k] = metrics.recall_at_k(labels, scores, k)
end
out.p_at_9999 = metrics.precision_at_k(labels, scores, 9999)
local pred = {}
for i = 1, #labels do pred[i] = labels[i] * 0.9 + 0.05 end
out.rmse, out.mae = metrics.rmse(scores, pred), metrics.mae(scores, pred)
return out
)lua");
  CHECK(num(v, "auc") == Approx(0.72144).epsilon(1e-12));
  CHECK(num(v, "logloss") == Approx(0.7945395420563421).epsilon(1e-12));
  CHECK(num(v, "brier") == Approx(0.22332959999999996).epsilon(1e-12));
  CHECK(num(v, "ap") == Approx(0.6915908183863914).epsilon(1e-12));
  CHECK(num(v, "precision") == Approx(0.6818181818181818).epsilon(1e-12));
  CHECK(num(v, "recall") == Approx(0.66).epsilon(1e-12));
  CHECK(num(v, "f1") == Approx(0.6707317073170732).epsilon(1e-12));
  CHECK(num(v, "accuracy") == Approx(0.676).epsilon(1e-12));
  CHECK(num(v, "tp") + num(v, "fn") == 250);  // positives
  CHECK(num(v, "tp") + num(v, "fp") + num(v, "tn") + num(v, "fn") == 500);
  CHECK(num(v, "p_at_1") == 1.0);
  CHECK(num(v, "r_at_1") == Approx(0.004).epsilon(1e-12));
  CHECK(num(v, "p_at_10") == Approx(0.7).epsilon(1e-12));
  CHECK(num(v, "r_at_10") == Approx(0.028).epsilon(1e-12));
  CHECK(num(v, "p_at_50") == Approx(0.76).epsilon(1e-12));
  CHECK(num(v, "r_at_50") == Approx(0.152).epsilon(1e-12));
  CHECK(num(v, "p_at_499") == Approx(0.501002004008016).epsilon(1e-12));
  CHECK(num(v, "r_at_499") == 1.0);
  CHECK(num(v, "p_at_9999") == 0.5);  // k past the end counts every element
  CHECK(num(v, "rmse") == Approx(0.43245069083075827).epsilon(1e-12));
  CHECK(num(v, "mae") == Approx(0.34232000000000007).epsilon(1e-12));

  auto small = f.values(R"lua(
local metrics = require("sluice.metrics")
return { tied = metrics.auc({ 0, 1, 0, 1 }, { 0.3, 0.3, 0.3, 0.3 }),
         bools = metrics.auc({ false, true, true }, { 0.1, 0.9, 0.4 }),
         clipped = metrics.logloss({ 1, 0 }, { 0.0, 0.0 }) }
)lua");
  CHECK(num(small, "tied") == 0.5);
  CHECK(num(small, "bools") == 1.0);
  CHECK(num(small, "clipped") == Approx(18.021826694558577).epsilon(1e-12));
}

TEST_CASE("stdlib modules: sluice.metrics.calibration matches calibration_curve, uniform and quantile bins") {
  struct Expected {
    const char* strategy;
    std::vector<double> fraction_positive, mean_predicted;
    std::vector<int> counts;
    double ece;
  };
  const std::vector<Expected> expected = {
      {"uniform",
       {0.22950819672131148, 0.18181818181818182, 0.41509433962264153, 0.36764705882352944, 0.5121951219512195,
        0.6304347826086957, 0.6, 0.6666666666666666, 0.7735849056603774, 0.75},
       {0.05114754098360659, 0.16409090909090915, 0.25773584905660385, 0.3549999999999999, 0.4595121951219514,
        0.5586956521739129, 0.6577777777777778, 0.7591111111111111, 0.8694339622641509, 0.9463636363636367},
       {61, 44, 53, 68, 41, 46, 45, 45, 53, 44},
       0.09360000000000002},
      {"quantile",
       {0.21153846153846154, 0.20754716981132076, 0.41509433962264153, 0.32558139534883723, 0.46, 0.6346153846153846,
        0.5918367346938775, 0.6470588235294118, 0.7735849056603774, 0.75},
       {0.04269230769230771, 0.1532075471698113, 0.25773584905660385, 0.33441860465116274, 0.41480000000000017,
        0.5299999999999997, 0.6408163265306125, 0.7521568627450981, 0.8694339622641509, 0.9463636363636367},
       {52, 53, 53, 43, 50, 52, 49, 51, 53, 44},
       0.09912000000000004},
  };
  Fixture f;
  for (const Expected& e : expected) {
    INFO(e.strategy);
    auto v = f.values(kDataset + "local bins, ece = metrics.calibration(labels, scores, { bins = 10, strategy = '" +
                      e.strategy + "' })\nreturn { bins = sluice.json.encode(bins), ece = ece }");
    CHECK(num(v, "ece") == Approx(e.ece).epsilon(1e-12));
    nlohmann::json bins = nlohmann::json::parse(v["bins"]);
    REQUIRE(bins.size() == e.counts.size());
    for (size_t i = 0; i < bins.size(); ++i) {
      INFO("bin " << i);
      CHECK(bins[i]["count"] == e.counts[i]);
      CHECK(bins[i]["fraction_positive"].get<double>() == Approx(e.fraction_positive[i]).epsilon(1e-12));
      CHECK(bins[i]["mean_predicted"].get<double>() == Approx(e.mean_predicted[i]).epsilon(1e-12));
      if (std::string(e.strategy) == "uniform") {
        CHECK(bins[i]["lo"].get<double>() == Approx(i / 10.0).margin(1e-15));
        CHECK(bins[i]["hi"].get<double>() == Approx((i + 1) / 10.0).margin(1e-15));
      }
    }
  }
}

TEST_CASE("stdlib modules: sluice.metrics errors name the function and the element, at the caller's line") {
  Fixture f;
  const std::string m = "local metrics = require('sluice.metrics')\n";
  CHECK(f.error_of(m + "metrics.auc({ 0, 2 }, { 0.1, 0.2 })") ==
        "lua_inline:check:2: metrics.auc: labels[2] is 2; labels must be 0 or 1 (or booleans)");
  CHECK(f.error_of(m + "metrics.auc({ 0, 1 }, { 0.1 })") == "lua_inline:check:2: metrics.auc: labels has 2 elements, scores has 1");
  CHECK(f.error_of(m + "metrics.auc({ 0, 1 }, { 0.1, 0/0 })") == "lua_inline:check:2: metrics.auc: scores[2] is nan, not a number");
  CHECK(f.error_of(m + "metrics.auc({ 1, 1 }, { 0.1, 0.2 })") == "lua_inline:check:2: metrics.auc: needs both classes; every label is 1");
  CHECK(f.error_of(m + "\nmetrics.logloss({ 1 }, { 1.5 })") == "lua_inline:check:3: metrics.logloss: probs[1] is 1.5, outside [0, 1]");
  CHECK(f.error_of(m + "metrics.brier({}, {})") == "lua_inline:check:2: metrics.brier: no data (the arrays are empty)");
  CHECK(f.error_of(m + "metrics.precision_at_k({ 1 }, { 0.5 }, 0)") ==
        "lua_inline:check:2: metrics.precision_at_k: k must be a whole number >= 1, not 0");
  CHECK(f.error_of(m + "metrics.recall_at_k({ 0 }, { 0.5 }, 1)") == "lua_inline:check:2: metrics.recall_at_k: needs at least one positive label");
  CHECK(f.error_of(m + "metrics.calibration({ 1 }, { 0.5 }, { strategy = 'even' })") ==
        "lua_inline:check:2: metrics.calibration: strategy must be \"uniform\" or \"quantile\", not even");
  CHECK(f.error_of(m + "metrics.rmse({ 1, 2 }, 'x')") == "lua_inline:check:2: metrics.rmse: predicted must be an array, not a string");
}

TEST_CASE("stdlib modules: sluice.check passes a good CSV and returns its profile") {
  Fixture f;
  f.write("data.csv",
          "id,age,income,churned,city\n"
          "1,34,52000.5,true,Berlin\n"
          "2,,61000,false,Paris\n"
          "3,45,NA,FALSE,Berlin\n"
          "4,29,48000,1,Paris\n");
  auto v = f.values(R"lua(
local check = require("sluice.check")
local r = check.csv("data.csv", {
  columns = { id = "integer", age = "number", income = "number", churned = "boolean", city = "string" },
  exact = true, range = { age = { 18, 99 }, income = { min = 0 } }, allowed = { city = { "Berlin", "Paris" } },
  unique = { "id" }, max_null_rate = 0.25, nulls = { "", "NA" }, min_rows = 4, max_rows = 4,
})
local age = r.columns.age
return { ok = r.ok, rows = r.rows, name = r.name, failures = #r.failures, age_nulls = age.nulls, age_rate = age.null_rate,
         age_min = age.min, age_max = age.max, age_mean = age.mean, income_nulls = r.columns.income.nulls,
         city_type = r.columns.city.type, id_mean = r.columns.id.mean }
)lua");
  CHECK(v == std::map<std::string, std::string>{{"ok", "true"},        {"rows", "4"},         {"name", "data.csv"},
                                                {"failures", "0"},     {"age_nulls", "1"},    {"age_rate", "0.25"},
                                                {"age_min", "29"},     {"age_max", "45"},     {"age_mean", "36"},
                                                {"income_nulls", "1"}, {"city_type", "string"}, {"id_mean", "2.5"}});
}

TEST_CASE("stdlib modules: sluice.check lists every failed check in one error") {
  Fixture f;
  f.write("data.csv",
          "id,age,Income,city,extra\n"
          "1,34,1,Berlin,x\n"
          "2,abc,2,Rome,x\n"
          "2,150,3,Paris,x\n"
          "4,,4,Madrid,x\n"
          "5,-1,5,Paris,x\n");
  const std::string spec = R"lua(
  columns = { id = "integer", age = "number", income = "number", city = "string" }, exact = true,
  range = { age = { 0, 120 } }, allowed = { city = { "Berlin", "Paris" } }, unique = { "id" },
  max_null_rate = { age = 0.1 }, min_rows = 10,
)lua";
  CHECK(f.error_of("local check = require('sluice.check')\ncheck.csv('data.csv', {" + spec + "})") ==
        "lua_inline:check:2: check.csv: data.csv: 9 checks failed: missing column 'income' (the header has 'Income'); "
        "unexpected column 'Income' (exact = true); unexpected column 'extra' (exact = true); "
        "column 'age': 1 value is not a number (first: 'abc' in row 2); "
        "column 'age': 2 values outside [0, 120] (first: '150' in row 3); "
        "column 'age': null rate 0.2 (1 of 5 rows) is above 0.1; "
        "column 'city': 2 values not allowed (first: 'Rome' in row 2); allowed: 'Berlin', 'Paris'; "
        "column 'id': 1 duplicate (first: '2' in row 3); 5 rows, fewer than min_rows = 10");
  // raise = false hands the failures back instead.
  auto v = f.values("local r = require('sluice.check').csv('data.csv', {" + spec +
                    " raise = false })\nreturn { ok = r.ok, n = #r.failures, first = r.failures[1] }");
  CHECK(v == std::map<std::string, std::string>{{"ok", "false"}, {"n", "9"}, {"first", "missing column 'income' (the header has 'Income')"}});
  // Over ten failures, the error names ten and counts the rest.
  std::string many = "local header, row = {}, {}\nfor i = 1, 12 do header[i] = 'c' .. i; row[i] = 'x' end\n"
                     "local cols = {}\nfor i = 1, 12 do cols['c' .. i] = 'number' end\n"
                     "require('sluice.check').rows(header, { row }, { columns = cols })";
  const std::string e = f.error_of(many);
  CHECK(e.rfind("lua_inline:check:5: check.rows: rows: 12 checks failed: column 'c1': 1 value is not a number (first: 'x' in row 1); ", 0) == 0);
  CHECK(e.substr(e.size() - 12) == "; and 2 more");
}

TEST_CASE("stdlib modules: sluice.check refuses malformed checks and unreadable files") {
  Fixture f;
  f.write("data.csv", "a\n1\n");
  const std::string c = "local check = require('sluice.check')\n";
  CHECK(f.error_of(c + "check.csv('data.csv', { rnage = {} })") ==
        "lua_inline:check:2: check.csv: unknown option 'rnage' (options: allowed, columns, exact, max_null_rate, max_rows, "
        "min_rows, name, nulls, raise, range, unique)");
  CHECK(f.error_of(c + "check.csv('data.csv', { columns = { a = 'float' } })") ==
        "lua_inline:check:2: check.csv: column 'a' has type 'float'; use string, number, integer or boolean");
  CHECK(f.error_of(c + "check.csv('data.csv', { columns = { 'a' } })") ==
        "lua_inline:check:2: check.csv: columns maps names to types, e.g. { age = \"number\" }; found the list entry 'a'");
  CHECK(f.error_of(c + "check.csv('../data.csv', {})") ==
        "lua_inline:check:2: csv.read: '../data.csv' is refused: '..' is not allowed in sluice.fs paths");
  f.write("empty.csv", "");
  CHECK(f.error_of(c + "check.csv('empty.csv', {})") == "lua_inline:check:2: check.csv: empty.csv is empty: no header");
}
