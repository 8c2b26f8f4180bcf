// End-to-end: the recommender sample (samples/recommender/). The data stage's
// Lua scripts run here through the built binary on real files; the full
// story (train and ship v1, monitor a clean and a drifted batch, retrain,
// promote v2, registry and lineage) runs the sample workflows themselves.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kSample = SLUICE_SOURCE_DIR "/samples/recommender";

// The sample's data stage without `ingest` (a plugin step): the same scripts,
// copied beside it, reading the generated export directly.
const char* kDataStage = R"(name = "recommender-data"
[params]
seed = 7
customers = 1500
weeks = 6
drift = 0.0
min_rows = 1000
max_null_rate = 0.02
[steps.generate]
lua = "scripts/generate.lua"
outputs = { data = "export/interactions.csv" }
[steps.validate]
lua = "scripts/validate.lua"
inputs = { data = "${steps.generate.outputs.data}" }
[steps.features]
lua = "scripts/features.lua"
inputs = { data = "${steps.generate.outputs.data}" }
outputs = { features = "features.csv" }
needs = ["validate"]
[steps.split]
lua = "scripts/split.lua"
inputs = { features = "${steps.features.outputs.features}" }
outputs = { train = "train.csv", valid = "valid.csv", test = "test.csv" }
)";

void copy_scripts(const TempDir& dir) {
  fs::create_directories(dir / "scripts");
  for (const auto& e : fs::directory_iterator(kSample + "/scripts"))
    if (e.path().extension() == ".lua") fs::copy_file(e.path(), dir / ("scripts/" + e.path().filename().string()));
}

json show(const TempDir& dir, const std::string& id) {
  auto r = run_sluice({"show", "--json", id}, dir.path());
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

// Runs of `workflow` in `dir`, newest first.
json runs_of(const TempDir& dir, const std::string& workflow) {
  auto r = run_sluice({"runs", "--json", workflow}, dir.path());
  REQUIRE(r.status == 0);
  return json::parse(r.out)["runs"];
}

// The newest run of `workflow`, shown whole.
json last_run(const TempDir& dir, const std::string& workflow) {
  json list = runs_of(dir, workflow);
  REQUIRE(!list.empty());
  return show(dir, list[0]["id"].get<std::string>());
}

json step(const json& run, const std::string& node) {
  for (const auto& s : run["steps"])
    if (s["node"] == node) return s;
  FAIL("no step " << node << " in run " << run["id"]);
  return {};
}

std::string workdir_of(const json& s) {
  return fs::path(s["attempts"].back()["log_path"].get<std::string>()).parent_path().string();
}

// A CSV without quoted fields (what the sample writes), as rows of fields.
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream l(line);
    while (std::getline(l, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    rows.push_back(fields);
  }
  return rows;
}

size_t column(const std::vector<std::string>& header, const std::string& name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  FAIL("no column " << name);
  return 0;
}

// Every object in `j` (at any depth) that records `alias` holding a version,
// in document order: the rows of an alias history, whatever wraps them.
void collect_alias_moves(const json& j, const std::string& alias, json& out) {
  if (j.is_object() && j.contains("alias") && j["alias"] == alias && j.contains("version")) out.push_back(j);
  if (j.is_structured())
    for (const auto& e : j) collect_alias_moves(e, alias, out);
}

// Runs the data stage with `params` in a fresh dir; the finished run.
json run_data_stage(const TempDir& dir, const std::vector<std::string>& params) {
  copy_scripts(dir);
  dir.write("data.toml", kDataStage);
  std::vector<std::string> args = {"run", "data.toml"};
  for (const auto& p : params) {
    args.push_back("-p");
    args.push_back(p);
  }
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  return last_run(dir, "recommender-data");
}

}  // namespace

TEST_CASE("recommender: the generator is deterministic: a seed gives the same bytes on every run") {
  // Separate homes, so no run can reuse another's result.
  TempDir a, b, c, d;
  auto digest = [](const TempDir& dir, const std::vector<std::string>& params) {
    std::vector<std::string> args = {"run", kSample + "/pipeline.toml", "--only", "generate", "-p", "customers=800"};
    for (const auto& p : params) {
      args.push_back("-p");
      args.push_back(p);
    }
    auto r = run_sluice(args, dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    json s = step(last_run(dir, "recommender"), "generate");
    return s["outputs"]["data"]["digest"].get<std::string>();
  };
  const std::string first = digest(a, {"seed=7"});
  CHECK(first.rfind("sha256:", 0) == 0);
  CHECK(digest(b, {"seed=7"}) == first);
  CHECK(digest(c, {"seed=8"}) != first);
  CHECK(digest(d, {"seed=7", "drift=0.5"}) != first);
}

TEST_CASE("recommender: the data stage validates the export, builds features and splits by customer") {
  TempDir dir;
  json run = run_data_stage(dir, {});
  json gen = step(run, "generate"), val = step(run, "validate"), feat = step(run, "features"), split = step(run, "split");
  // Everything generated was validated; about 1% of devices are unknown, below the contract's 2%.
  auto exported = read_csv(workdir_of(gen) + "/export/interactions.csv");
  std::set<std::string> customers;
  for (size_t i = 1; i < exported.size(); ++i) customers.insert(exported[i][0]);
  CHECK(gen["values"]["rows"] == std::to_string(exported.size() - 1));
  CHECK(val["values"]["rows"] == gen["values"]["rows"]);
  CHECK(gen["values"]["customers"] == std::to_string(customers.size()));
  CHECK(val["values"]["customers"] == gen["values"]["customers"]);
  CHECK(customers.size() > 1300);  // of 1500: a few never came
  const double null_rate = std::stod(val["values"]["null_rate_device"].get<std::string>());
  CHECK(null_rate > 0.002);
  CHECK(null_rate < 0.02);

  // One row per (customer, category) with history; labels are 0/1 with a learnable share of 1s.
  auto features = read_csv(workdir_of(feat) + "/features.csv");
  REQUIRE(features.size() > 1);
  CHECK(std::to_string(features.size() - 1) == feat["values"]["rows"].get<std::string>());
  const size_t label = column(features[0], "label"), id = column(features[0], "customer_id"),
               category = column(features[0], "category");
  std::set<std::pair<std::string, std::string>> keys;
  size_t positives = 0;
  for (size_t i = 1; i < features.size(); ++i) {
    REQUIRE(features[i].size() == features[0].size());
    CHECK((features[i][label] == "0" || features[i][label] == "1"));
    positives += features[i][label] == "1";
    keys.emplace(features[i][id], features[i][category]);
  }
  CHECK(keys.size() == features.size() - 1);
  const double rate = static_cast<double>(positives) / static_cast<double>(features.size() - 1);
  CHECK(rate > 0.05);
  CHECK(rate < 0.4);

  // The splits partition the rows, and no customer is in two of them.
  std::map<std::string, std::string> split_of;
  size_t total = 0;
  for (const std::string part : {"train", "valid", "test"}) {
    auto rows = read_csv(workdir_of(split) + "/" + part + ".csv");
    REQUIRE(rows[0] == features[0]);
    CHECK(std::to_string(rows.size() - 1) == split["values"]["n_" + part].get<std::string>());
    total += rows.size() - 1;
    for (size_t i = 1; i < rows.size(); ++i) {
      auto [it, fresh] = split_of.emplace(rows[i][id], part);
      if (!fresh) CHECK(it->second == part);
    }
  }
  CHECK(total == features.size() - 1);
  const double n_train = std::stod(split["values"]["n_train"].get<std::string>());
  CHECK(n_train / static_cast<double>(total) > 0.6);
  CHECK(n_train / static_cast<double>(total) < 0.8);
}

TEST_CASE("recommender: the drift knob moves what the monitor watches, a new seed does not") {
  TempDir clean, clean2, drifted, check;
  auto features_of = [](const json& run) { return workdir_of(step(run, "features")) + "/features.csv"; };
  fs::copy_file(features_of(run_data_stage(clean, {"seed=7"})), check / "clean.csv");
  fs::copy_file(features_of(run_data_stage(clean2, {"seed=8"})), check / "clean2.csv");
  fs::copy_file(features_of(run_data_stage(drifted, {"seed=9", "drift=1"})), check / "drifted.csv");
  // PSI and KS per numeric feature, chi-square of the segment mix, with the
  // sluice module's statistics (checked against scipy in the unit tests).
  check.write("wf.toml", R"(name = "drift-check"
[steps.compare]
inputs = { clean = "clean.csv", clean2 = "clean2.csv", drifted = "drifted.csv" }
lua_inline = '''
local numeric = { "views", "sessions", "carts", "purchases", "spend", "avg_price", "weeks_since_visit",
  "weeks_since_purchase", "views_last_week", "abandoned_carts", "category_share", "customer_sessions", "mobile_share" }
local types = {}
for _, f in ipairs(numeric) do types[f] = "number" end
local ref = sluice.csv.columns(ctx.inputs.clean, { types = types })
local out = {}
for _, other in ipairs({ "clean2", "drifted" }) do
  local cur = sluice.csv.columns(ctx.inputs[other], { types = types })
  local max_psi, worst, min_p = 0, "", 1
  for _, f in ipairs(numeric) do
    local psi = sluice.stats.psi(ref[f], cur[f], 10)
    local _, p = sluice.stats.ks_2samp(ref[f], cur[f])
    if psi > max_psi then max_psi, worst = psi, f end
    if p < min_p then min_p = p end
    out[other .. "_psi_" .. f] = psi
  end
  local counts = {}
  for i, cols in ipairs({ ref, cur }) do
    local c = { budget = 0, mainstream = 0, premium = 0 }
    for _, s in ipairs(cols.segment) do c[s] = c[s] + 1 end
    counts[i] = { c.budget, c.mainstream, c.premium }
  end
  local _, p_segment = sluice.stats.chi2_contingency(counts)
  out[other .. "_max_psi"], out[other .. "_worst"], out[other .. "_min_ks_p"] = max_psi, worst, min_p
  out[other .. "_segment_p"] = p_segment
end
return out
'''
)");
  auto r = run_sluice({"run", "wf.toml"}, check.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  json v = step(last_run(check, "drift-check"), "compare")["values"];
  INFO(v.dump(2));
  auto num = [&](const std::string& k) { return std::stod(v[k].get<std::string>()); };
  // Another week of the same shop: every feature stays within PSI 0.1.
  CHECK(num("clean2_max_psi") < 0.1);
  CHECK(num("clean2_segment_p") > 0.001);
  // The drifted shop: more mobile shoppers and dearer prices, far past PSI 0.2;
  // the segment mix moves toward budget shoppers.
  CHECK(num("drifted_psi_mobile_share") > 0.2);
  CHECK(num("drifted_psi_avg_price") > 0.2);
  CHECK(num("drifted_min_ks_p") < 1e-6);
  CHECK(num("drifted_segment_p") < 1e-6);
}

TEST_CASE("recommender: validation fails a bad export once, listing every broken rule") {
  TempDir dir;
  copy_scripts(dir);
  dir.write("export.csv",
            "customer_id,segment,week,session_id,device,category,views,price,cart,purchase,coupon\n"
            "1,budget,1,1,mobile,toys,3,17.5,1,1,x\n"
            "1,budget,2,2,tablet,toys,2,-3,0,0,x\n"
            "2,,9,3,,books,1,12,0,1,x\n"
            "2,premium,3,4,,garden,0,abc,1,1,x\n"
            "3,mainstream,1,5,desktop,home,4,60.5,0,0\n");
  dir.write("wf.toml", R"(name = "contract"
[params]
weeks = 6
min_rows = 10
max_null_rate = 0.25
[steps.validate]
lua = "scripts/validate.lua"
inputs = { data = "export.csv" }
[steps.features]
lua = "scripts/features.lua"
inputs = { data = "export.csv" }
outputs = { features = "features.csv" }
needs = ["validate"]
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  json run = last_run(dir, "contract");
  json val = step(run, "validate");
  CHECK(val["status"] == "failed");
  CHECK(val["error"] ==
        "export.csv breaks the data contract: unexpected column 'coupon'; "
        "1 row without 11 fields (first: line 6, 10 fields); "
        "5 rows, fewer than min_rows = 10; "
        "segment: 1 empty value in a column that must not have any; "
        "week: 1 value above 6 (first: line 4, '9'); "
        "device: 1 value not one of mobile, desktop (first: line 3, 'tablet'); "
        "device: null rate 0.4 above max_null_rate = 0.25; "
        "category: 1 value not one of electronics, fashion, home, beauty, sports, books, toys, grocery "
        "(first: line 5, 'garden'); "
        "views: 1 value below 1 (first: line 5, '0'); "
        "price: 1 value below 0.01 (first: line 3, '-3'); "
        "price: 1 value not a number (first: line 5, 'abc'); "
        "1 purchase without a cart (first: line 4)");
  CHECK(step(run, "features")["status"] == "skipped");
  // Each problem is also its own line in the step's log.
  const std::string log = read_file(val["attempts"][0]["log_path"].get<std::string>());
  CHECK(log.find("error: price: 1 value below 0.01 (first: line 3, '-3')\n") != std::string::npos);
}

// The whole story, as scripts/demo tells it, at the sample's own (small)
// scale. Needs every plugin the sample uses (storage, trainer, monitor,
// deploy, notify, registry, workflow) and `sluice models` / `sluice lineage`.
TEST_CASE("recommender: the story: v1 ships, a clean batch is healthy, a drifted batch retrains and v2 replaces v1") {
  TempDir dir;
  const std::vector<std::string> where = {"-p", "deploy_root=" + (dir / "serving"), "-p",
                                          "notify_file=" + (dir / "releases.jsonl")};
  auto run = [&](const std::string& workflow, std::vector<std::string> params) {
    std::vector<std::string> args = {"run", kSample + "/" + workflow};
    args.insert(args.end(), where.begin(), where.end());
    for (const auto& p : params) {
      args.push_back("-p");
      args.push_back(p);
    }
    auto r = run_sluice(args, dir.path(), {}, 900);
    INFO(workflow << "\n" << r.out << r.err);
    REQUIRE(r.status == 0);
  };
  auto models = [&](const std::vector<std::string>& what) {
    std::vector<std::string> args = {"models"};
    args.insert(args.end(), what.begin(), what.end());
    args.push_back("--json");
    auto r = run_sluice(args, dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    return json::parse(r.out);
  };

  // 1. Train and ship v1: registered, in production, deployed, smoke-tested.
  run("pipeline.toml", {});
  json v1_run = last_run(dir, "recommender");
  CHECK(v1_run["status"] == "succeeded");
  CHECK(step(v1_run, "register")["values"]["version"] == "1");
  CHECK(step(v1_run, "promote")["values"]["promoted"] == "true");
  CHECK(step(v1_run, "champion_score")["status"] == "skipped");  // nothing to challenge yet
  CHECK(step(v1_run, "smoke")["status"] == "succeeded");
  CHECK(models({"show", "recommender@production"})["version"] == 1);
  CHECK(fs::read_symlink(dir / "serving/current").filename() == "1");
  const double v1_auc = std::stod(step(v1_run, "evaluate")["values"]["auc"].get<std::string>());
  CHECK(v1_auc > 0.75);
  CHECK(v1_auc < 0.9);

  // 2. A clean batch: no drift, production holds, nothing is retrained.
  run("monitor.toml", {"seed=101"});
  json clean = last_run(dir, "recommender-monitor");
  CHECK(step(clean, "drift")["values"]["drift"] == "false");
  CHECK(step(clean, "performance")["values"]["degraded"] == "false");
  CHECK(step(clean, "verdict")["values"]["retrain"] == "false");
  CHECK(step(clean, "retrain")["status"] == "skipped");
  CHECK(runs_of(dir, "recommender").size() == 1);

  // 3. A drifted batch: drift found, the pipeline runs as a child run on the
  // shifted shop, challenges production on the same rows, wins, ships v2.
  run("monitor.toml", {"seed=102", "drift=0.8"});
  json drifted = last_run(dir, "recommender-monitor");
  CHECK(step(drifted, "drift")["values"]["drift"] == "true");
  CHECK(step(drifted, "drift")["values"]["drifted"].get<std::string>().find("mobile_share") != std::string::npos);
  CHECK(step(drifted, "verdict")["values"]["retrain"] == "true");
  json retrain = step(drifted, "retrain");
  CHECK(retrain["status"] == "succeeded");
  CHECK(retrain["values"]["status"] == "succeeded");  // the child run's outcome
  json pipelines = runs_of(dir, "recommender");
  REQUIRE(pipelines.size() == 2);
  CHECK(pipelines[0]["id"] == retrain["values"]["run_id"]);
  json v2_run = show(dir, pipelines[0]["id"].get<std::string>());
  CHECK(v2_run["status"] == "succeeded");
  CHECK(v2_run["params"]["drift"] == 0.8);
  CHECK(v2_run["params"]["compare_with_production"] == true);
  CHECK(step(v2_run, "champion_eval")["status"] == "succeeded");
  const double champion_auc = std::stod(step(v2_run, "champion_eval")["values"]["auc"].get<std::string>());
  const double challenger_auc = std::stod(step(v2_run, "evaluate")["values"]["auc"].get<std::string>());
  CHECK(challenger_auc > champion_auc + 0.005);  // v1 no longer fits the shop; v2 does
  CHECK(step(v2_run, "register")["values"]["version"] == "2");
  CHECK(step(v2_run, "promote")["values"]["promoted"] == "true");
  CHECK(models({"show", "recommender@production"})["version"] == 2);
  CHECK(fs::read_symlink(dir / "serving/current").filename() == "2");

  // The alias history shows both moves, v1 then v2; v1's stint has ended.
  json moves = json::array();
  collect_alias_moves(models({"history", "recommender"}), "production", moves);
  INFO(moves.dump(2));
  REQUIRE(moves.size() == 2);
  CHECK(moves[0]["version"] == 1);
  CHECK(moves[1]["version"] == 2);
  // The audit log has both release decisions.
  auto audit = read_csv(dir / "releases.jsonl");
  CHECK(audit.size() == 2);

  // Lineage of production reaches the data the retraining run generated.
  const std::string data_digest = step(v2_run, "generate")["outputs"]["data"]["digest"];
  auto lineage = run_sluice({"lineage", "recommender@production"}, dir.path());
  INFO(lineage.out << lineage.err);
  CHECK(lineage.status == 0);
  CHECK(lineage.out.find(data_digest) != std::string::npos);
}

TEST_CASE("recommender: the smoke test passes a whole release and fails a stale switch or a changed model") {
  TempDir dir;
  const std::string fixture = SLUICE_SOURCE_DIR "/tests/e2e/data/smoke";
  const std::string model_text = read_file(fixture + "/model.json");
  json tampered = json::parse(model_text);
  json& tree = tampered["learner"]["gradient_booster"]["model"]["trees"][0];
  for (size_t i = 0; i < tree["left_children"].size(); ++i)
    if (tree["left_children"][i] == -1) tree["split_conditions"][i] = tree["split_conditions"][i].get<double>() + 0.5;
  auto release = [&](const std::string& root, const std::string& version, const std::string& model) {
    dir.write(root + "/releases/" + version + "/model.json", model);
    dir.write(root + "/releases/" + version + "/reference.csv", "views,avg_price,mobile_share,label\n");
    dir.write(root + "/releases/" + version + "/card.json", R"({"features": "views,avg_price,mobile_share"})");
  };
  release("good", "3", model_text);
  fs::create_directory_symlink("releases/3", dir / "good/current");
  release("stale", "2", model_text);
  release("stale", "3", model_text);
  fs::create_directory_symlink("releases/2", dir / "stale/current");
  release("tampered", "3", tampered.dump());
  fs::create_directory_symlink("releases/3", dir / "tampered/current");
  fs::copy_file(fixture + "/scored.csv", dir / "scored.csv");
  fs::copy_file(kSample + "/scripts/smoke_test.py", dir / "smoke_test.py");
  std::string wf = "name = \"smoke\"\n";
  for (const std::string root : {"good", "stale", "tampered"})
    wf += "[steps." + root + "]\nrun = \"python3 ${inputs.script} --root " + (dir / root) +
          " --version 3 --scored ${inputs.scored} --rows 60\"\n"
          "inputs = { script = \"smoke_test.py\", scored = \"scored.csv\" }\n";
  dir.write("wf.toml", wf);
  auto r = run_sluice({"run", "--keep-going", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  json run = last_run(dir, "smoke");
  json good = step(run, "good"), stale = step(run, "stale"), bad = step(run, "tampered");
  CHECK(good["status"] == "succeeded");
  CHECK(good["values"]["rows_checked"] == "60");
  CHECK(std::stod(good["values"]["max_difference"].get<std::string>()) < 1e-6);
  CHECK(read_file(good["attempts"][0]["log_path"]).find("release 3: 4 trees, 3 features; 60 rows score as offline") == 0);
  CHECK(stale["status"] == "failed");
  CHECK(read_file(stale["attempts"][0]["log_path"]) == "smoke test failed: " + (dir / "stale/current") + " points to " +
                                                           (dir / "stale/releases/2") + ", not " +
                                                           (dir / "stale/releases/3") + "\n");
  CHECK(bad["status"] == "failed");
  const std::string log = read_file(bad["attempts"][0]["log_path"]);
  CHECK(log.rfind("smoke test failed: row 1: deployed model scores ", 0) == 0);
  CHECK(log.find(", offline 0.2957397\n") != std::string::npos);
}
