// plugin.toml: the malformed-manifest corpus (tests/dsl/manifests), the
// `with` corpus (tests/dsl/with: workflows checked against
// tests/dsl/with/plugins/textstats), what a valid manifest reads as, and the
// arguments an action is called with.
//
// Each NN-name.toml of a corpus must give exactly NN-name.expected. To write
// the .expected files after a deliberate change of messages, run the tests
// with SLUICE_REGEN_EXPECTED=1 and review the diff.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dsl/parser.h"
#include "dsl/plugin_manifest.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace sluice::dsl;

namespace {

const fs::path kManifests = fs::path(SLUICE_TEST_DATA) / "dsl" / "manifests";
const fs::path kWith = fs::path(SLUICE_TEST_DATA) / "dsl" / "with";

std::vector<std::string> corpus_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
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

// Compares with the .expected file (or writes it under SLUICE_REGEN_EXPECTED).
void check_expected(const fs::path& dir, const std::string& file, const std::string& actual) {
  const fs::path expected_path = dir / fs::path(file).replace_extension(".expected");
  if (std::getenv("SLUICE_REGEN_EXPECTED")) std::ofstream(expected_path, std::ios::binary) << actual;
  const std::string expected = read_file(expected_path);
  INFO("file: " << file << "\n--- expected ---\n" << expected << "--- actual ---\n" << actual << "---");
  CHECK_FALSE(expected.empty());
  REQUIRE(actual == expected);
}

void check_corpus_pairs(const fs::path& dir, size_t at_least) {
  const std::vector<std::string> files = corpus_files(dir);
  CHECK(files.size() >= at_least);
  for (const std::string& f : files) {
    INFO(f);
    CHECK(fs::exists(dir / fs::path(f).replace_extension(".expected")));
  }
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".expected") continue;
    INFO(e.path().filename().string());
    CHECK(fs::exists(fs::path(e.path()).replace_extension(".toml")));
  }
}

// The manifest `text` as read from /plugins/textstats/plugin.toml; fails the test on errors.
PluginManifest parse_ok(const std::string& text) {
  Diagnostics diags;
  std::optional<PluginManifest> m = parse_plugin_manifest("plugin.toml", "/plugins/textstats", text, diags);
  INFO(diags.format_all());
  REQUIRE(m);
  return *m;
}

class InDir {
 public:
  explicit InDir(const fs::path& dir) : saved_(fs::current_path()) { fs::current_path(dir); }
  ~InDir() { fs::current_path(saved_); }
  InDir(const InDir&) = delete;
  InDir& operator=(const InDir&) = delete;

 private:
  fs::path saved_;
};

}  // namespace

TEST_CASE("plugin manifest errors: the corpus pairs every .toml with its .expected") {
  check_corpus_pairs(kManifests, 16);
}

TEST_CASE("plugin manifest errors: each malformed plugin.toml gives exactly its expected diagnostics") {
  for (const std::string& file : corpus_files(kManifests)) {
    DYNAMIC_SECTION("manifest: " << file) {
      Diagnostics diags;
      std::optional<PluginManifest> m =
          parse_plugin_manifest(file, "/plugins/textstats", read_file(kManifests / file), diags);
      CHECK_FALSE(m);
      check_expected(kManifests, file, diags.format_all());
    }
  }
}

TEST_CASE("plugin with errors: the corpus pairs every .toml with its .expected") { check_corpus_pairs(kWith, 4); }

TEST_CASE("plugin with errors: each workflow gives exactly its expected diagnostics against textstats") {
  Diagnostics mdiags;
  std::optional<PluginManifest> textstats = load_plugin_manifest((kWith / "plugins" / "textstats").string(), mdiags);
  INFO(mdiags.format_all());
  REQUIRE(textstats);
  for (const std::string& file : corpus_files(kWith)) {
    DYNAMIC_SECTION("with: " << file) {
      InDir cd(kWith);
      Diagnostics diags;
      WorkflowPtr wf = load_workflow(file, diags);
      INFO(diags.format_all());
      REQUIRE(wf);
      Diagnostics checked;
      checked.set_path(file);
      checked.set_source(wf->source);
      for (const Step& s : wf->steps) {
        REQUIRE(s.kind == ActionKind::Uses);
        REQUIRE(s.plugin == "textstats");
        check_with(s, *textstats, checked);
      }
      checked.sort();
      check_expected(kWith, file, checked.format_all());
    }
  }
}

TEST_CASE("plugin manifest: a valid manifest reads with sorted actions, params, defaults and kinds") {
  PluginManifest m = parse_ok(R"(
name = "textstats"
version = "1.2.0-rc.1+build5"
kind = "lua"
description = "Word statistics"

[actions.summary]

[actions.count]
description = "Counts words"
params.top = { type = "integer", default = 10, description = "How many" }
params.path = { type = "string", required = true }
params.ratio = { type = "float", default = 1 }
params.words = { type = "array", default = ["a", 2] }
params.extra = { type = "any" }
)");
  CHECK(m.path == "plugin.toml");
  CHECK(m.dir == "/plugins/textstats");
  CHECK(m.name == "textstats");
  CHECK(m.version == "1.2.0-rc.1+build5");
  CHECK(m.kind == PluginKind::Lua);
  CHECK(m.description == "Word statistics");
  CHECK(m.library.empty());
  REQUIRE(m.actions.size() == 2);
  CHECK(m.actions[0].name == "count");
  CHECK(m.actions[1].name == "summary");
  CHECK(m.find("summary") == &m.actions[1]);
  CHECK(m.find("nope") == nullptr);
  const PluginAction& count = *m.find("count");
  CHECK(count.description == "Counts words");
  std::vector<std::string> names;
  for (const ActionParam& p : count.params) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"extra", "path", "ratio", "top", "words"});
  const ActionParam& path = *count.find("path");
  CHECK(path.required);
  CHECK(path.type == ParamKind::String);
  CHECK_FALSE(path.default_value);
  const ActionParam& top = *count.find("top");
  CHECK_FALSE(top.required);
  CHECK(top.type == ParamKind::Integer);
  CHECK(*top.default_value == Value(int64_t{10}));
  CHECK(top.description == "How many");
  // An integer default of a float param is stored as a float.
  CHECK(*count.find("ratio")->default_value == Value(1.0));
  CHECK(*count.find("words")->default_value == Value(ValueArray{Value("a"), Value(int64_t{2})}));
  CHECK(count.find("extra")->type == ParamKind::Any);
  CHECK_FALSE(count.find("extra")->default_value);
  CHECK(std::string(to_string(ParamKind::Table)) == "table");
  CHECK(std::string(to_string(PluginKind::Native)) == "native");
}

TEST_CASE("plugin manifest: a native plugin's library is made absolute against its folder") {
  PluginManifest rel = parse_ok(
      "name = \"textstats\"\nversion = \"1\"\nkind = \"native\"\nlibrary = \"lib/libtextstats.so\"\n"
      "isolate = false\n[actions.count]\n");
  CHECK(rel.kind == PluginKind::Native);
  CHECK(rel.library == "/plugins/textstats/lib/libtextstats.so");
  CHECK_FALSE(rel.isolate);
  PluginManifest abs = parse_ok(
      "name = \"textstats\"\nversion = \"1\"\nkind = \"native\"\nlibrary = \"/opt/x/../lib/libt.so\"\n[actions.count]\n");
  CHECK(abs.library == "/opt/lib/libt.so");
  CHECK(abs.isolate);
}

TEST_CASE("plugin manifest: load_plugin_manifest reads the folder and checks the name against it") {
  sluice::test::ScratchDir dir;
  fs::create_directories(dir / "textstats");
  fs::create_directories(dir / "other");
  const std::string text = "name = \"textstats\"\nversion = \"1.0\"\nkind = \"lua\"\n[actions.count]\n";
  std::ofstream(dir / "textstats/plugin.toml") << text;
  std::ofstream(dir / "other/plugin.toml") << text;
  {
    Diagnostics diags;
    std::optional<PluginManifest> m = load_plugin_manifest(dir / "textstats", diags);
    REQUIRE(m);
    CHECK(m->path == dir / "textstats/plugin.toml");
    CHECK(m->dir == dir / "textstats");
  }
  {
    Diagnostics diags;
    CHECK_FALSE(load_plugin_manifest(dir / "other", diags, "plugins/other/plugin.toml"));
    CHECK(diags.format_all() ==
          "plugins/other/plugin.toml:1:8: error: plugin name 'textstats' does not match its folder 'other': the search "
          "path finds a plugin by its folder's name\n"
          "name = \"textstats\"\n"
          "       ^\n");
  }
  {
    Diagnostics diags;
    CHECK_FALSE(load_plugin_manifest(dir / "missing", diags, "plugins/missing/plugin.toml"));
    CHECK(diags.format_all() == "plugins/missing/plugin.toml: error: cannot read plugin.toml: No such file or directory\n");
  }
}

TEST_CASE("plugin manifest: resolve_action_args applies defaults and converts resolved templates") {
  PluginManifest m = parse_ok(R"(
name = "textstats"
version = "1.0"
kind = "lua"
[actions.count.params]
path = { type = "string", required = true }
top = { type = "integer", default = 10 }
ratio = { type = "float", default = 0.5 }
verbose = { type = "boolean" }
words = { type = "array" }
options = { type = "table" }
extra = { type = "any" }
)");
  const PluginAction& count = *m.find("count");
  ValueTable args;
  std::string error;

  // Given values pass; defaults fill in; params without a default stay absent.
  REQUIRE(resolve_action_args(m, count, {{"path", Value("a.txt")}, {"ratio", Value(int64_t{2})}}, args, error));
  CHECK(args == ValueTable{{"path", Value("a.txt")}, {"ratio", Value(2.0)}, {"top", Value(int64_t{10})}});

  // Strings (rendered templates) become the declared type.
  REQUIRE(resolve_action_args(m, count,
                              {{"path", Value("a.txt")},
                               {"top", Value("25")},
                               {"ratio", Value("0.25")},
                               {"verbose", Value("true")},
                               {"words", Value("[\"a\",1,2.5,false]")},
                               {"options", Value("{\"k\":{\"n\":[1]}}")},
                               {"extra", Value("[1]")}},
                              args, error));
  CHECK(args.at("top") == Value(int64_t{25}));
  CHECK(args.at("ratio") == Value(0.25));
  CHECK(args.at("verbose") == Value(true));
  CHECK(args.at("words") == Value(ValueArray{Value("a"), Value(int64_t{1}), Value(2.5), Value(false)}));
  CHECK(args.at("options") == Value(ValueTable{{"k", Value(ValueTable{{"n", Value(ValueArray{Value(int64_t{1})})}})}}));
  CHECK(args.at("extra") == Value("[1]"));  // `any` keeps the text

  struct Bad {
    ValueTable with;
    std::string error;
  };
  const std::vector<Bad> bad = {
      {{{"path", Value("a")}, {"top", Value("ten")}}, "param 'top' of 'textstats.count' must be an integer, found 'ten'"},
      {{{"path", Value("a")}, {"top", Value("1.5")}}, "param 'top' of 'textstats.count' must be an integer, found '1.5'"},
      {{{"path", Value("a")}, {"ratio", Value(" 1")}}, "param 'ratio' of 'textstats.count' must be a number, found ' 1'"},
      {{{"path", Value("a")}, {"verbose", Value("yes")}}, "param 'verbose' of 'textstats.count' must be a boolean, found 'yes'"},
      {{{"path", Value("a")}, {"words", Value("{}")}}, "param 'words' of 'textstats.count' must be an array, found '{}'"},
      {{{"path", Value("a")}, {"words", Value("[null]")}}, "param 'words' of 'textstats.count' must be an array, found '[null]'"},
      {{{"path", Value("a")}, {"options", Value(true)}}, "param 'options' of 'textstats.count' must be a table, found a boolean"},
      {{{"path", Value(int64_t{1})}}, "param 'path' of 'textstats.count' must be a string, found an integer"},
      {{{"top", Value(int64_t{1})}}, "missing required param 'path' of 'textstats.count'"},
      {{{"path", Value("a")}, {"tpo", Value(int64_t{1})}}, "unknown param 'tpo' for 'textstats.count'"},
  };
  for (const Bad& b : bad) {
    std::string e;
    CHECK_FALSE(resolve_action_args(m, count, b.with, args, e));
    CHECK(e == b.error);
  }
}
