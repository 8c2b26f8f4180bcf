// End-to-end: outputs and inputs that would lead outside the work dir or the
// workflow's folder are refused, and nothing is stored or written outside.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  REQUIRE(::realpath(p.c_str(), buf));
  return buf;
}

// Every path under `dir` except .sluice/, relative and sorted.
std::set<std::string> files_outside_state(const TempDir& dir) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir.path()); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().lexically_relative(dir.path()).string();
    if (rel == ".sluice") {
      it.disable_recursion_pending();
      continue;
    }
    out.insert(rel);
  }
  return out;
}

// Runs a one-step workflow and returns the step's recorded error.
std::string step_error(const TempDir& dir, const std::string& step_toml) {
  dir.write("wf.toml", "name = \"paths\"\n[steps.s]\n" + step_toml);
  RunResult r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  auto show = show_run(dir, newest_run(dir));
  auto s = step_of(show, "s");
  CHECK(s["status"] == "failed");
  CHECK(s["outputs"].empty());  // nothing of it was stored
  return s["error"];
}

}  // namespace

TEST_CASE("path safety: an output that is a symlink out of the work dir is refused, not stored") {
  TempDir dir;
  std::string err = step_error(dir, "run = \"ln -s /etc/passwd leak.txt\"\noutputs = { o = \"leak.txt\" }\n");
  const std::string workdir = real(dir / (".sluice/runs/" + newest_run(dir) + "/s"));
  CHECK(err == "output 'o': 'leak.txt' leads outside the work dir '" + workdir + "' (it resolves to '/etc/passwd')");
  // The file it pointed to is in no object.
  RunResult ls = run_sluice({"artifacts", "ls", "--json"}, dir.path());
  for (const auto& a : nlohmann::json::parse(ls.out)["artifacts"])
    CHECK(read_file(object_path(dir, a["digest"])) != read_file("/etc/passwd"));
}

TEST_CASE("path safety: a folder output holding a symlink out of it, or a FIFO, is refused") {
  TempDir dir;
  std::string err = step_error(dir, "run = \"mkdir -p d/sub && echo x > d/a && ln -s ../.. d/sub/up\"\noutputs = { o = \"d\" }\n");
  CHECK(err == "output 'o': 'd/sub/up' leads outside the folder 'd' (it resolves to '" +
                   real(dir / (".sluice/runs/" + newest_run(dir) + "/s")) + "')");
  CHECK(step_error(dir, "run = \"mkdir d && ln -s a d/dangling\"\noutputs = { o = \"d\" }\n") ==
        "output 'o': 'd/dangling' is a symlink that cannot be resolved");
  CHECK(step_error(dir, "run = \"mkfifo p\"\noutputs = { o = \"p\" }\n") ==
        "output 'o': 'p' is a FIFO; only files, folders and symlinks can be stored");
  // A symlink that stays inside is fine, and stored as a link.
  dir.write("wf.toml", "name = \"paths\"\n[steps.s]\nrun = \"mkdir d && echo x > d/a && ln -s a d/b\"\noutputs = { o = \"d\" }\n");
  RunResult ok = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(ok.out << ok.err);
  CHECK(ok.status == 0);
}

TEST_CASE("path safety: inputs with '..', absolute paths or symlinks leading out of the workflow's folder are refused") {
  TempDir outside;
  outside.write("secret.txt", "secret\n");
  TempDir dir;
  dir.write("data/ok.txt", "fine\n");
  fs::create_symlink(outside / "secret.txt", dir / "data/link.txt");
  const std::string folder = real(dir.path());
  CHECK(step_error(dir, "run = \"cat ${inputs.x}\"\ninputs = { x = \"../secret.txt\" }\n") ==
        "input 'x': '../secret.txt' contains a '..' component");
  CHECK(step_error(dir, "run = \"cat ${inputs.x}\"\ninputs = { x = \"data/../../secret.txt\" }\n") ==
        "input 'x': 'data/../../secret.txt' contains a '..' component");
  CHECK(step_error(dir, "run = \"cat ${inputs.x}\"\ninputs = { x = \"" + outside / "secret.txt" + "\" }\n") ==
        "input 'x': '" + outside / "secret.txt" + "' leads outside the workflow's folder '" + folder +
            "' (it resolves to '" + real(outside / "secret.txt") + "')");
  CHECK(step_error(dir, "run = \"cat ${inputs.x}\"\ninputs = { x = \"data/link.txt\" }\n") ==
        "input 'x': '" + dir / "data/link.txt" + "' leads outside the workflow's folder '" + folder +
            "' (it resolves to '" + real(outside / "secret.txt") + "')");
  CHECK(step_error(dir, "run = \"cat ${inputs.x}\"\ninputs = { x = \"data/none.txt\" }\n") ==
        "input 'x' not found: " + dir / "data/none.txt");
  // Nothing was written outside the state folder, and the secret was never stored.
  CHECK(files_outside_state(dir) == std::set<std::string>{"data", "data/link.txt", "data/ok.txt", "wf.toml"});
  CHECK(files_outside_state(outside) == std::set<std::string>{"secret.txt"});
  RunResult ls = run_sluice({"artifacts", "ls", "--json"}, dir.path());
  for (const auto& a : nlohmann::json::parse(ls.out)["artifacts"])
    CHECK(read_file(object_path(dir, a["digest"])) != "secret\n");
  // A file of the workflow's folder is read, from the artifact store.
  dir.write("wf.toml", "name = \"paths\"\n[steps.s]\nrun = \"cat ${inputs.x} > ${outputs.o}\"\ninputs = { x = \"data/ok.txt\" }\n"
                       "outputs = { o = \"o.txt\" }\n");
  RunResult ok = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(ok.out << ok.err);
  CHECK(ok.status == 0);
}

TEST_CASE("path safety: outputs with '..', absolute paths or a NUL byte are refused when the workflow is read") {
  TempDir dir;
  dir.write("wf.toml", "name = \"paths\"\n[steps.s]\nrun = \"true\"\noutputs = { a = \"../x\", b = \"/tmp/x\", c = \"x\\u0000y\" }\n");
  RunResult r = run_sluice({"validate", "wf.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("wf.toml:4:17: error: output 'a' of step 's' must be a relative path inside the step's work dir: "
                   "'../x' contains a '..' component") != std::string::npos);
  CHECK(r.err.find("error: output 'b' of step 's' must be a relative path inside the step's work dir: '/tmp/x' is "
                   "absolute where a relative path is expected") != std::string::npos);
  CHECK(r.err.find("error: output 'c' of step 's' must be a relative path inside the step's work dir: the path "
                   "contains a NUL byte") != std::string::npos);
  CHECK_FALSE(dir.exists(".sluice"));
}
