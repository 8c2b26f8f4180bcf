// Runs Lua steps through LuaHost::run_step, the call path the executor uses,
// and prints the time per call. The headline is one trivial script run
// 1,000,000 times on one host (target: under 2 s); the other rows show what the
// time goes to by adding one cost at a time.
//
//   lua_bench [--runs 1000000] [--only NAME]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/lua_host.h"

using namespace sluice;
using namespace sluice::engine;
using Clock = std::chrono::steady_clock;

namespace {

struct Case {
  const char* name;
  const char* what;
  const char* code;
  bool rich_input;  // params, inputs, outputs, matrix, two upstream steps
  double share;     // runs = share * --runs
};

const Case kCases[] = {
    {"trivial", "return { n = ctx.params.n + 1 } (the headline)", "return { n = ctx.params.n + 1 }", false, 1.0},
    {"empty", "an empty chunk, no values", "return", false, 0.2},
    {"rich-ctx", "trivial, with 6 params, 2 inputs, 1 output, a matrix, 3 upstream instances",
     "return { n = ctx.params.n + 1 }", true, 0.2},
    {"string-lib", "trivial + string.format (the string library is copied on first use)",
     "return { n = string.format('%d', ctx.params.n + 1) }", false, 0.2},
    {"sluice-lib", "trivial + sluice.metric (the sluice module is copied on first use)",
     "sluice.metric('n', ctx.params.n) return { n = ctx.params.n + 1 }", false, 0.2},
    {"fan-in", "pick the best of 3 upstream instances (rich input)",
     "local best for _, i in ipairs(ctx.steps.train) do if not best or i.values.auc > best.values.auc then best = i end end "
     "return { lr = best.matrix.lr, auc = best.values.auc }",
     true, 0.2},
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  long runs = 1'000'000;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: lua_bench [--runs N] [--only NAME]\n");
      return 2;
    }
  }
  const std::string workdir = std::filesystem::temp_directory_path() / "sluice-lua-bench";
  std::filesystem::create_directories(workdir);

  std::printf("%-11s %10s %9s %9s  %s\n", "case", "runs", "total s", "us/run", "what");
  for (const Case& c : kCases) {
    if (!only.empty() && only != c.name) continue;
    LuaHost host;
    LuaStepInput in;
    in.code = c.code;
    in.workdir = workdir;
    in.run = {"20260101-000000-000-abcd", "bench", 1};
    in.params["n"] = dsl::Value(int64_t{41});
    if (c.rich_input) {
      for (const char* name : {"dataset", "min_auc", "epochs", "depth", "tag"}) in.params[name] = dsl::Value(name);
      in.inputs = {{"data", workdir + "/data.csv"}, {"labels", workdir + "/labels.csv"}};
      in.outputs = {{"model", workdir + "/model.json"}};
      in.matrix = {{"lr", dsl::Value(0.1)}};
      in.steps["validate"].values = {{"rows", "1200"}, {"ok", "true"}};
      LuaUpstream& train = in.steps["train"];
      train.matrix = true;
      for (double lr : {0.05, 0.1, 0.2})
        train.instances.push_back({{{"lr", dsl::Value(lr)}}, {{"auc", std::to_string(0.8 + lr / 10)}}});
    }
    const long n = std::max(1L, static_cast<long>(static_cast<double>(runs) * c.share));
    // Warm up: the first call compiles the chunk.
    LuaStepResult r = host.run_step(in);
    if (!r.ok) {
      std::fprintf(stderr, "%s: %s\n", c.name, r.error.c_str());
      return 1;
    }
    long failed = 0;
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) failed += host.run_step(in).ok ? 0 : 1;
    const double s = seconds_since(t0);
    std::printf("%-11s %10ld %9.3f %9.3f  %s\n", c.name, n, s, s / static_cast<double>(n) * 1e6, c.what);
    if (failed) {
      std::fprintf(stderr, "%s: %ld runs failed\n", c.name, failed);
      return 1;
    }
  }
  return 0;
}
