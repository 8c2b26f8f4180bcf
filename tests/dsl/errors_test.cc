// The malformed-workflow corpus: every tests/dsl/errors/NN-name.toml must
// produce exactly the diagnostics in NN-name.expected (message, position,
// source line and caret), as `sluice validate NN-name.toml` prints them when
// run inside tests/dsl/errors.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dsl/parser.h"

namespace fs = std::filesystem;
using namespace sluice::dsl;

namespace {

const fs::path kCorpus = fs::path(SLUICE_TEST_DATA) / "dsl" / "errors";

// Every NN-name.toml of the corpus, by name.
std::vector<std::string> corpus_files() {
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(kCorpus))
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the reader with the corpus as the working directory, so the path in
// messages is the bare file name and Lua scripts resolve as for the CLI.
class InCorpusDir {
 public:
  InCorpusDir() : saved_(fs::current_path()) { fs::current_path(kCorpus); }
  ~InCorpusDir() { fs::current_path(saved_); }
  InCorpusDir(const InCorpusDir&) = delete;
  InCorpusDir& operator=(const InCorpusDir&) = delete;

 private:
  fs::path saved_;
};

}  // namespace

TEST_CASE("dsl errors: the corpus has at least 40 files, each with its .expected") {
  const std::vector<std::string> files = corpus_files();
  CHECK(files.size() >= 40);
  for (const std::string& f : files) {
    INFO(f);
    CHECK(fs::exists(kCorpus / fs::path(f).replace_extension(".expected")));
  }
  // An .expected whose .toml is gone means a case was deleted.
  for (const fs::directory_entry& e : fs::directory_iterator(kCorpus)) {
    if (e.path().extension() != ".expected") continue;
    INFO(e.path().filename().string());
    CHECK(fs::exists(fs::path(e.path()).replace_extension(".toml")));
  }
}

TEST_CASE("dsl errors: each malformed workflow gives exactly its expected diagnostics") {
  for (const std::string& file : corpus_files()) {
    DYNAMIC_SECTION("dsl errors: " << file) {
      const std::string expected = read_file(kCorpus / fs::path(file).replace_extension(".expected"));
      std::string actual;
      bool loaded = false;
      {
        InCorpusDir cd;
        Diagnostics diags;
        loaded = load_workflow(file, diags) != nullptr;
        actual = diags.format_all();
      }
      INFO("file: " << file << "\n--- expected ---\n" << expected << "--- actual ---\n" << actual << "---");
      CHECK_FALSE(loaded);
      CHECK_FALSE(expected.empty());
      REQUIRE(actual == expected);
    }
  }
}
