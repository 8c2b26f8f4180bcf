// End-to-end: the built `sluice` binary on files in a temp dir.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using sluice::test::run_sluice;
using sluice::test::TempDir;

namespace {

const char* kGood = R"(name = "good"
[params]
epochs = 3
[steps.a]
run = "echo ${params.epochs} > ${outputs.o}"
outputs = { o = "o.txt" }
[steps.b]
run = "cat ${inputs.x}"
inputs = { x = "${steps.a.outputs.o}" }
matrix = { k = [1, 2] }
)";

const char* kBad = R"(name = "bad"
[steps.a]
run = "echo"
needs = ["zzz"]
)";

}  // namespace

TEST_CASE("cli: validate prints a summary for a valid file and exits 0") {
  TempDir dir;
  dir.write("good.toml", kGood);
  auto r = run_sluice({"validate", "good.toml"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out == "good.toml: ok: workflow 'good', 2 steps, 3 instances, 2 edges\n");
  CHECK(r.err.empty());
}

TEST_CASE("cli: validate reports diagnostics on stderr and exits 2") {
  TempDir dir;
  dir.write("good.toml", kGood);
  dir.write("bad.toml", kBad);
  auto r = run_sluice({"validate", "good.toml", "bad.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.out == "good.toml: ok: workflow 'good', 2 steps, 3 instances, 2 edges\n");
  CHECK(r.err == "bad.toml:4:10: error: step 'a' needs unknown step 'zzz'\nneeds = [\"zzz\"]\n         ^\n");
}

TEST_CASE("cli: validate --json gives every diagnostic as an object") {
  TempDir dir;
  dir.write("bad.toml", kBad);
  auto r = run_sluice({"validate", "--json", "bad.toml"}, dir.path());
  CHECK(r.status == 2);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["valid"] == false);
  REQUIRE(j["files"].size() == 1);
  auto d = j["files"][0]["diagnostics"][0];
  CHECK(d == nlohmann::json{{"path", "bad.toml"}, {"line", 4}, {"column", 10}, {"severity", "error"},
                            {"code", "unknown-step"}, {"message", "step 'a' needs unknown step 'zzz'"}});
}

TEST_CASE("cli: a missing file is an error naming it") {
  TempDir dir;
  auto r = run_sluice({"validate", "nope.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "nope.toml: error: cannot read workflow file: No such file or directory\n");
}

TEST_CASE("cli: -p overrides are typed against the declared param") {
  TempDir dir;
  dir.write("good.toml", kGood);
  auto r = run_sluice({"validate", "-p", "epochs=abc", "good.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice: error: -p epochs=abc: param 'epochs' is an integer; cannot use 'abc'\n");
  r = run_sluice({"graph", "--format", "json", "-p", "epochs=7", "good.toml"}, dir.path());
  CHECK(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["params"]["epochs"] == 7);
  CHECK(j["nodes"][0]["run"] == "echo 7 > ${outputs.o}");
}

TEST_CASE("cli: graph draws matrix instances in every format") {
  TempDir dir;
  dir.write("good.toml", kGood);
  auto dot = run_sluice({"graph", "good.toml"}, dir.path());
  CHECK(dot.status == 0);
  CHECK(dot.out ==
        "digraph \"good\" {\n  rankdir=LR;\n  node [shape=box];\n  \"a\";\n  \"b[k=1]\";\n  \"b[k=2]\";\n"
        "  \"a\" -> \"b[k=1]\";\n  \"a\" -> \"b[k=2]\";\n}\n");
  auto mmd = run_sluice({"graph", "--format=mermaid", "good.toml"}, dir.path());
  CHECK(mmd.out == "flowchart LR\n  n0[\"a\"]\n  n1[\"b[k=1]\"]\n  n2[\"b[k=2]\"]\n  n0 --> n1\n  n0 --> n2\n");
  auto json = run_sluice({"graph", "-f", "json", "good.toml"}, dir.path());
  auto j = nlohmann::json::parse(json.out);
  CHECK(j["nodes"].size() == 3);
  CHECK(j["nodes"][1]["matrix"] == nlohmann::json{{"k", 1}});
  CHECK(j["edges"][1] == nlohmann::json{{"from", "a"}, {"to", "b[k=2]"}});
}

TEST_CASE("cli: usage errors exit 2 and print usage") {
  TempDir dir;
  auto r = run_sluice({"frobnicate"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice: error: unknown command 'frobnicate'\n", 0) == 0);
  r = run_sluice({"validate", "--frob", "x.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err ==
        "sluice validate: error: unknown option '--frob'\n"
        "usage: sluice validate [--json] [-p NAME=VALUE]... FILE...\n"
        "Run 'sluice validate --help' for more.\n");
  r = run_sluice({"graph", "--format", "png", "x.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice graph: error: unknown format 'png': use dot, mermaid or json\n", 0) == 0);
  r = run_sluice({"validate"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice validate: error: missing argument\n", 0) == 0);
  r = run_sluice({}, dir.path());
  CHECK(r.status == 2);
}

TEST_CASE("cli: --version and help") {
  TempDir dir;
  auto r = run_sluice({"--version"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out.rfind("sluice ", 0) == 0);
  r = run_sluice({"help"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out.find("validate") != std::string::npos);
  r = run_sluice({"graph", "--help"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out.rfind("usage: sluice graph [--format dot|mermaid|json] [-p NAME=VALUE]... FILE\n", 0) == 0);
}

TEST_CASE("cli: the shipped samples validate") {
  TempDir dir;
  auto r = run_sluice({"validate", SLUICE_SOURCE_DIR "/samples/quickstart/workflow.toml"}, dir.path());
  CHECK(r.status == 0);
}

TEST_CASE("cli: the hidden plugin worker command refuses to run without the engine") {
  TempDir dir;
  auto r = run_sluice({"__plugin-worker"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice __plugin-worker: no request on fd 3 (this command is for the engine only)\n");
  r = run_sluice({"help"}, dir.path());
  CHECK(r.out.find("plugin-worker") == std::string::npos);
}
