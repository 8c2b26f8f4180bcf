#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "dsl/dag_export.h"
#include "dsl/params.h"
#include "dsl/parser.h"

using namespace sluice::dsl;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kData = SLUICE_TEST_DATA "/dsl";

WorkflowPtr parse_ok(const std::string& text) {
  Diagnostics diags;
  WorkflowPtr wf = parse_workflow(text, "wf.toml", diags);
  INFO(diags.format_all());
  REQUIRE(wf);
  return wf;
}

std::string errors_of(const std::string& text) {
  Diagnostics diags;
  WorkflowPtr wf = parse_workflow(text, "wf.toml", diags);
  CHECK_FALSE(wf);
  return diags.format_all();
}

std::vector<std::string> preds(const Workflow& wf, const std::string& node) {
  std::vector<std::string> out;
  for (uint32_t p : wf.dag.predecessors(static_cast<uint32_t>(wf.dag.find(node)))) out.push_back(wf.dag.node(p).name);
  return out;
}

}  // namespace

TEST_CASE("parser: a full workflow reads every section") {
  Diagnostics diags;
  WorkflowPtr wf = load_workflow(kData + "/valid/sweep.toml", diags);
  INFO(diags.format_all());
  REQUIRE(wf);
  CHECK(wf->name == "sweep");
  REQUIRE(wf->params.size() == 4);
  CHECK(wf->find_param("min_auc")->type == ValueType::Float);
  CHECK(wf->find_param("depths")->type == ValueType::Array);
  CHECK(wf->find_param("depths")->element == ValueType::Integer);
  CHECK(wf->find_param("verbose")->default_value == Value(false));
  REQUIRE(wf->schedule);
  CHECK(wf->schedule->timezone == "Europe/Berlin");
  CHECK(wf->schedule->catchup == Catchup::All);
  CHECK(wf->schedule->catchup_window == Duration(12 * 3'600'000));
  CHECK(wf->schedule->overlap == Overlap::Queue);
  CHECK(wf->schedule->deadline == Duration(2 * 3'600'000));

  REQUIRE(wf->steps.size() == 5);
  const Step& ingest = wf->steps[0];
  CHECK(ingest.name == "ingest");
  CHECK_FALSE(ingest.cache);
  CHECK(ingest.retries == 1);  // from [defaults]
  CHECK(ingest.timeout == Duration(30 * 60'000));
  CHECK(ingest.resources.memory == 512ull << 20);
  const Step& train = *wf->find_step("train");
  CHECK(train.retries == 2);
  CHECK(train.retry_backoff == Duration(5000));
  CHECK(train.resources.cpus == 2.0);
  CHECK(train.resources.memory == 4ull << 30);
  CHECK(wf->find_step("check")->kind == ActionKind::LuaInline);
  const Step& reg = *wf->find_step("register");
  CHECK(reg.kind == ActionKind::Uses);
  CHECK(reg.plugin == "registry");
  CHECK(reg.action == "register");
  CHECK(reg.continue_on_error);
  REQUIRE(reg.with.size() == 3);
  CHECK(reg.with[0].name == "metrics");
}

TEST_CASE("parser: matrix expansion names instances by sorted keys, last key fastest") {
  Diagnostics diags;
  WorkflowPtr wf = load_workflow(kData + "/valid/sweep.toml", diags);
  REQUIRE(wf);
  std::vector<std::string> names;
  for (uint32_t id : wf->dag.instances(2)) names.push_back(wf->dag.node(id).name);
  CHECK(names == std::vector<std::string>{"train[depth=4,lr=0.05]", "train[depth=4,lr=0.1]", "train[depth=6,lr=0.05]",
                                          "train[depth=6,lr=0.1]"});
  CHECK(wf->dag.size() == 8);
  // pick needs every instance of train.
  CHECK(preds(*wf, "pick").size() == 4);
}

TEST_CASE("parser: references add implicit edges - `when` does too") {
  WorkflowPtr wf = parse_ok(R"(
name = "w"
[params]
p = 1
[steps.a]
run = "echo > ${outputs.o}"
outputs = { o = "o.txt" }
[steps.b]
run = "cat ${steps.a.outputs.o}"
[steps.c]
run = "echo"
env = { X = "${steps.b.values.k}" }
[steps.d]
run = "echo"
when = "steps.c.values.ok == 'yes' and params.p > 0 -- steps.a in a comment is not a reference"
[steps.e]
run = "echo '${steps.a.outputs.o}'"
needs = ["d"]
)");
  CHECK(preds(*wf, "b") == std::vector<std::string>{"a"});
  CHECK(preds(*wf, "c") == std::vector<std::string>{"b"});
  CHECK(preds(*wf, "d") == std::vector<std::string>{"c"});
  CHECK(preds(*wf, "e") == std::vector<std::string>{"a", "d"});
  CHECK(wf->dag.roots() == std::vector<uint32_t>{0});
}

TEST_CASE("parser: a cycle is reported once with its path, at the step that starts it") {
  CHECK(errors_of(R"(name = "w"
[steps.a]
run = "echo ${steps.c.values.x}"
[steps.b]
run = "echo"
needs = ["a"]
[steps.c]
run = "echo"
needs = ["b"]
)") == "wf.toml:2:8: error: dependency cycle: a -> b -> c -> a\n[steps.a]\n       ^\n");
}

TEST_CASE("parser: every error of a file is reported, in file order") {
  std::string out = errors_of(R"(name = "w"
[steps.a]
run = 1
retries = -1
[steps.b]
run = "echo"
neds = ["a"]
)");
  CHECK(out ==
        "wf.toml:3:7: error: 'run' in step 'a' must be a string, found an integer\nrun = 1\n      ^\n"
        "wf.toml:4:11: error: 'retries' in step 'a' must be between 0 and 100, found -1\nretries = -1\n          ^\n"
        "wf.toml:7:1: error: unknown key 'neds' in step 'b'; did you mean 'needs'?\nneds = [\"a\"]\n^\n");
}

TEST_CASE("parser: template positions account for escapes and multi-line strings") {
  CHECK(errors_of("name = \"w\"\n[steps.a]\nrun = \"a\\tb ${params.nope}\"\n") ==
        "wf.toml:3:13: error: unknown param 'nope' in '${params.nope}'\nrun = \"a\\tb ${params.nope}\"\n            ^\n");
  CHECK(errors_of("name = \"w\"\n[steps.a]\nrun = '''\necho one\n  echo ${params.nope}\n'''\n") ==
        "wf.toml:5:8: error: unknown param 'nope' in '${params.nope}'\n  echo ${params.nope}\n       ^\n");
}

TEST_CASE("params: overrides are typed against the declaration") {
  WorkflowPtr wf = parse_ok(R"(name = "w"
[params]
epochs = 10
lr = 0.1
name = "x"
fast = true
layers = [1, 2]
[steps.a]
run = "echo ${params.epochs}"
)");
  ParamValues v = default_params(*wf);
  std::string err;
  CHECK(apply_override(*wf, "epochs=20", v, err));
  CHECK(v["epochs"] == Value(int64_t{20}));
  CHECK(apply_override(*wf, "lr=1", v, err));
  CHECK(v["lr"] == Value(1.0));
  CHECK(apply_override(*wf, "name=a=b", v, err));
  CHECK(v["name"] == Value("a=b"));
  CHECK(apply_override(*wf, "layers=3,4,5", v, err));
  CHECK(v["layers"] == Value(ValueArray{Value(int64_t{3}), Value(int64_t{4}), Value(int64_t{5})}));

  CHECK_FALSE(apply_override(*wf, "epochs=abc", v, err));
  CHECK(err == "param 'epochs' is an integer; cannot use 'abc'");
  CHECK_FALSE(apply_override(*wf, "lr=fast", v, err));
  CHECK(err == "param 'lr' is a float; cannot use 'fast'");
  CHECK_FALSE(apply_override(*wf, "fast=yes", v, err));
  CHECK(err == "param 'fast' is a boolean; cannot use 'yes'");
  CHECK_FALSE(apply_override(*wf, "layers=1,x", v, err));
  CHECK(err == "param 'layers' is an array of integers; cannot use 'x'");
  CHECK_FALSE(apply_override(*wf, "epoch=3", v, err));
  CHECK(err == "unknown param 'epoch' for workflow 'w'; did you mean 'epochs'?");
  CHECK_FALSE(apply_override(*wf, "epochs", v, err));
  CHECK(err == "expected -p NAME=VALUE, found 'epochs'");
}

TEST_CASE("export: golden DOT, Mermaid and JSON for the sample workflows") {
  for (const std::string name : {"sweep"}) {
    DYNAMIC_SECTION(name) {
      Diagnostics diags;
      WorkflowPtr wf = load_workflow(kData + "/valid/" + name + ".toml", diags);
      REQUIRE(wf);
      CHECK(to_dot(*wf) == read_file(kData + "/golden/" + name + ".dot"));
      CHECK(to_mermaid(*wf) == read_file(kData + "/golden/" + name + ".mmd"));
      CHECK(to_json(*wf, default_params(*wf)) == read_file(kData + "/golden/" + name + ".json"));
    }
  }
}
