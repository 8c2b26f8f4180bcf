// End-to-end: Lua plugins with the built binary — `sluice plugins`, `with`
// checked at `sluice validate` and before `sluice run`, and a workflow that
// profiles, checks and splits a dataset with samples/plugins/dataset, then
// scores it with sluice.metrics.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

const std::string kSample = std::string(SLUICE_SOURCE_DIR) + "/samples/plugins/dataset";

// A temp dir with the sample plugin copied into plugins/dataset.
void add_sample(const TempDir& dir) {
  fs::create_directories(dir / "plugins");
  fs::copy(kSample, dir / "plugins/dataset", fs::copy_options::recursive);
}

nlohmann::json only_run(const TempDir& dir) {
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  auto list = nlohmann::json::parse(runs.out)["runs"];
  REQUIRE(list.size() == 1);
  auto show = run_sluice({"show", "--json", list[0]["id"].get<std::string>()}, dir.path());
  REQUIRE(show.status == 0);
  return nlohmann::json::parse(show.out);
}

std::map<std::string, nlohmann::json> steps_by_node(const nlohmann::json& run) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& s : run["steps"]) out[s["node"].get<std::string>()] = s;
  return out;
}

// 300 customers: a score that predicts the label (1 in 3) with some noise.
std::string customers_csv() {
  std::string csv = "id,age,score,label\n";
  uint64_t s = 7;
  for (int i = 1; i <= 300; ++i) {
    s = s * 16807 % 2147483647;
    const int label = i % 3 == 0;
    const double noise = static_cast<double>(s % 1000) / 1000.0;
    const double score = 0.35 * label + 0.65 * noise;
    csv += std::to_string(i) + "," + std::to_string(20 + i % 50) + "," + std::to_string(score) + "," +
           std::to_string(label) + "\n";
  }
  return csv;
}

}  // namespace

TEST_CASE("plugins command: lists a plugin's actions and params, as text and JSON") {
  TempDir dir;
  add_sample(dir);
  auto r = run_sluice({"plugins", "dataset"}, dir.path());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out ==
        "dataset 0.1.0 (lua) - Profile, check and split CSV datasets\n"
        "  folder: " + dir.path() + "/plugins/dataset\n"
        "  dataset.check: Fails the step unless the CSV passes every check (sluice.check)\n"
        "    allowed        table    optional       Allowed values: { country = [\"DE\", \"FR\"] }\n"
        "    columns        table    optional       Required columns and their types: { age = \"number\" }\n"
        "    data           string   required       The CSV file (with a header)\n"
        "    exact          boolean  default false  No columns besides 'columns'\n"
        "    max_null_rate  any      optional       A rate for every column, or { column = rate }\n"
        "    min_rows       integer  optional       Fewest rows accepted\n"
        "    range          table    optional       Allowed ranges: { age = [0, 120] }\n"
        "    unique         array    optional       Columns whose values must not repeat\n"
        "  dataset.profile: Per-column profile of a CSV file: type, nulls, distinct values, numeric summary\n"
        "    data  string   required   The CSV file (with a header), e.g. \"${inputs.data}\"\n"
        "    top   integer  default 5  Most frequent values listed per text column\n"
        "  dataset.split: Shuffles the rows and writes the outputs 'train' and 'test' (optionally stratified)\n"
        "    data           string   required     The CSV file (with a header)\n"
        "    seed           integer  default 42   Seed of the shuffle: the same seed gives the same split\n"
        "    stratify       string   optional     Column whose value shares are kept in both sets\n"
        "    test_fraction  float    default 0.2  Share of rows (of each stratum) that go to 'test'\n");

  auto all = run_sluice({"plugins", "--json"}, dir.path(), {"SLUICE_PLUGIN_PATH=" + dir.path() + "/more"});
  REQUIRE(all.status == 0);
  nlohmann::json j = nlohmann::json::parse(all.out);
  CHECK(j["problems"].empty());
  const std::vector<std::string> path = j["search_path"];
  REQUIRE(path.size() >= 3);
  CHECK(path[0] == dir.path() + "/plugins");
  CHECK(path[1] == dir.path() + "/more");
  nlohmann::json dataset;
  for (const auto& p : j["plugins"])
    if (p["name"] == "dataset") dataset = p;
  REQUIRE_FALSE(dataset.is_null());
  CHECK(dataset["version"] == "0.1.0");
  CHECK(dataset["kind"] == "lua");
  CHECK(dataset["folder"] == dir.path() + "/plugins/dataset");
  CHECK(dataset["manifest"] == "plugins/dataset/plugin.toml");
  REQUIRE(dataset["actions"].size() == 3);
  const nlohmann::json& split = dataset["actions"][2];
  CHECK(split["name"] == "split");
  CHECK(split["params"][3] == nlohmann::json({{"name", "test_fraction"}, {"type", "float"}, {"required", false},
                                              {"default", 0.2}, {"description", "Share of rows (of each stratum) that go to 'test'"}}));
}

TEST_CASE("plugins command: an unknown name gets a suggestion, an invalid plugin.toml its diagnostics") {
  TempDir dir;
  add_sample(dir);
  dir.write("plugins/broken/plugin.toml", "name = \"broken\"\nversion = \"1\"\nkind = \"lau\"\n[actions.go]\n");
  auto r = run_sluice({"plugins", "datset"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("sluice plugins: error: unknown plugin 'datset': no datset/plugin.toml in " + dir.path() + "/plugins, ", 0) == 0);
  CHECK(r.err.substr(r.err.size() - 26) == "; did you mean 'dataset'?\n");

  const std::string broken =
      "plugins/broken/plugin.toml:3:8: error: unknown plugin kind 'lau': use \"lua\" or \"native\"; did you mean 'lua'?\n"
      "kind = \"lau\"\n"
      "       ^\n";
  r = run_sluice({"plugins", "broken"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == broken);
  // The listing still shows the good plugins, and says what is wrong with the others.
  r = run_sluice({"plugins"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.out.find("dataset 0.1.0 (lua)") != std::string::npos);
  CHECK(r.err == broken);
}

TEST_CASE("plugins: validate and run check every uses step against plugin.toml, at the workflow's positions") {
  TempDir dir;
  add_sample(dir);
  dir.write("wf.toml", R"(name = "prep"

[steps.profile]
uses = "dataset.profil"

[steps.split]
uses = "dataset.split"
with = { data = "x.csv", test_fraction = "a lot", sed = 1 }

[steps.fetch]
uses = "featurestore.fetch"
)");
  auto v = run_sluice({"validate", "wf.toml"}, dir.path());
  CHECK(v.status == 2);
  CHECK(v.out.empty());
  INFO(v.err);
  // The positions of the three errors of the file, in order.
  CHECK(v.err.find("wf.toml:4:8: error: plugin 'dataset' has no action 'profil' (step 'profile'); did you mean 'profile'?\n") == 0);
  CHECK(v.err.find("wf.toml:8:26: error: param 'test_fraction' of 'dataset.split' must be a number, found a string\n") !=
        std::string::npos);
  CHECK(v.err.find("wf.toml:8:51: error: unknown param 'sed' in 'with' of step 'split' for 'dataset.split'; did you mean 'seed'?\n") !=
        std::string::npos);
  CHECK(v.err.find("wf.toml:11:8: error: unknown plugin 'featurestore' in step 'fetch': no featurestore/plugin.toml in " +
                   dir.path() + "/plugins, ") != std::string::npos);

  // `sluice run` refuses the same file before anything runs.
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == v.err);
  CHECK_FALSE(fs::exists(dir / ".sluice/sluice.db"));

  auto j = run_sluice({"validate", "--json", "wf.toml"}, dir.path());
  CHECK(j.status == 2);
  nlohmann::json doc = nlohmann::json::parse(j.out);
  REQUIRE(doc["files"][0]["diagnostics"].size() == 4);
  CHECK(doc["files"][0]["diagnostics"][3]["code"] == "unknown-plugin");
  CHECK(doc["files"][0]["diagnostics"][3]["line"] == 11);
}

TEST_CASE("plugins: a workflow profiles, checks and splits a dataset with the sample plugin, then scores it in Lua") {
  TempDir dir;
  add_sample(dir);
  dir.write("data/customers.csv", customers_csv());
  dir.write("wf.toml", R"(name = "prep"

[params]
seed = 11
min_rows = 100

[steps.profile]
uses = "dataset.profile"
inputs = { data = "data/customers.csv" }
with = { data = "${inputs.data}" }
outputs = { report = "profile.json" }

[steps.check]
uses = "dataset.check"
inputs = { data = "data/customers.csv" }
with = { data = "${inputs.data}", columns = { id = "integer", age = "number", score = "number", label = "integer" }, range = { score = [0, 1] }, unique = ["id"], min_rows = "${params.min_rows}" }

[steps.split]
uses = "dataset.split"
needs = ["check"]
inputs = { data = "data/customers.csv" }
with = { data = "${inputs.data}", stratify = "label", seed = "${params.seed}" }
outputs = { train = "train.csv", test = "test.csv" }

[steps.score]
needs = ["split"]
inputs = { test = "${steps.split.outputs.test}" }
lua_inline = '''
local metrics = require("sluice.metrics")
local cols = sluice.csv.columns(ctx.inputs.test, { types = { score = "number", label = "number" } })
local auc = metrics.auc(cols.label, cols.score)
sluice.metric("auc", auc)
return { auc = auc, rows = #cols.label, p_at_10 = metrics.precision_at_k(cols.label, cols.score, 10) }
'''
)");
  auto v = run_sluice({"validate", "wf.toml"}, dir.path());
  INFO(v.err);
  REQUIRE(v.status == 0);
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto steps = steps_by_node(only_run(dir));
  CHECK(steps["profile"]["values"] ==
        nlohmann::json({{"rows", "300"}, {"columns", "4"}, {"max_null_rate", "0"}, {"worst_column", "id"}}));
  CHECK(steps["check"]["values"] == nlohmann::json({{"rows", "300"}, {"ok", "true"}}));
  CHECK(steps["split"]["values"] == nlohmann::json({{"train_rows", "240"}, {"test_rows", "60"}, {"strata", "2"}}));
  CHECK(steps["score"]["values"]["rows"] == "60");
  // The label raises the score by 0.35 on top of uniform noise: a good, imperfect ranking.
  const double auc = std::stod(steps["score"]["values"]["auc"].get<std::string>());
  CHECK(auc > 0.75);
  CHECK(auc < 1.0);

  // The split is the seed's: the same seed again writes the same test set.
  const std::string workdir = fs::path(steps["split"]["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  const std::string test = read_file(workdir + "/test.csv");
  CHECK(test.rfind("id,age,score,label\n", 0) == 0);
  TempDir again;
  add_sample(again);
  again.write("data/customers.csv", customers_csv());
  again.write("wf.toml", read_file(dir / "wf.toml"));
  REQUIRE(run_sluice({"run", "--only", "split", "wf.toml"}, again.path()).status == 0);
  auto again_steps = steps_by_node(only_run(again));
  const std::string again_dir =
      fs::path(again_steps["split"]["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  CHECK(read_file(again_dir + "/test.csv") == test);
}

TEST_CASE("plugins: a failing action fails its step with the plugin's line, and a bad template value is caught at dispatch") {
  TempDir dir;
  add_sample(dir);
  dir.write("data/customers.csv", "id,label\n1,0\n2,1\n2,1\n");
  dir.write("wf.toml", R"(name = "bad"
[params]
fraction = "most"

[steps.check]
uses = "dataset.check"
inputs = { data = "data/customers.csv" }
with = { data = "${inputs.data}", unique = ["id"] }

[steps.split]
uses = "dataset.split"
inputs = { data = "data/customers.csv" }
with = { data = "${inputs.data}", test_fraction = "${params.fraction}" }
outputs = { train = "train.csv", test = "test.csv" }

[steps.after]
run = "true"
needs = ["check"]
)");
  auto r = run_sluice({"run", "--keep-going", "wf.toml"}, dir.path());
  CHECK(r.status == 1);
  auto steps = steps_by_node(only_run(dir));
  CHECK(steps["check"]["error"] ==
        "dataset/init.lua:73: check.csv: customers.csv: 1 check failed: column 'id': 1 duplicate (first: '2' in row 3)");
  CHECK(steps["after"]["status"] == "skipped");
  CHECK(steps["split"]["error"] == "param 'test_fraction' of 'dataset.split' must be a number, found 'most'");
}
