#include <catch2/catch.hpp>

#include "dsl/diagnostic.h"
#include "dsl/suggest.h"

using namespace sluice::dsl;

TEST_CASE("diagnostics: format shows the source line and a caret under the column") {
  Diagnostic d{Severity::Error, "unknown-key", "unknown key 'timout' in step 'a'", "wf.toml", {3, 5}};
  CHECK(format(d, "name = \"x\"\n[steps.a]\n    timout = 1\n") ==
        "wf.toml:3:5: error: unknown key 'timout' in step 'a'\n"
        "    timout = 1\n"
        "    ^\n");
}

TEST_CASE("diagnostics: tabs in the source line are kept so the caret lines up") {
  Diagnostic d{Severity::Error, "x", "bad", "f.toml", {1, 3}};
  CHECK(format(d, "\t\tx = 1") == "f.toml:1:3: error: bad\n\t\tx = 1\n\t\t^\n");
}

TEST_CASE("diagnostics: no position means no caret") {
  Diagnostic d{Severity::Error, "io", "cannot read workflow file: No such file or directory", "gone.toml", {}};
  CHECK(format(d, "") == "gone.toml: error: cannot read workflow file: No such file or directory\n");
}

TEST_CASE("diagnostics: sort orders by position and keeps ties stable") {
  Diagnostics ds;
  ds.set_path("f");
  ds.error("b", {3, 1}, "third");
  ds.error("a", {1, 9}, "first");
  ds.error("c", {3, 1}, "fourth");
  ds.error("d", {2, 2}, "second");
  ds.sort();
  std::vector<std::string> order;
  for (const Diagnostic& d : ds.items()) order.push_back(d.message);
  CHECK(order == std::vector<std::string>{"first", "second", "third", "fourth"});
}

TEST_CASE("suggest: close typos are suggested, distant words are not") {
  std::vector<std::string> keys = {"timeout", "retries", "retry_backoff", "needs"};
  CHECK(closest("timout", keys) == "timeout");
  CHECK(closest("retires", keys) == "retries");  // transposition
  CHECK(closest("neds", keys) == "needs");
  CHECK(closest("zz", {"a", "b"}).empty());
  CHECK(closest("completely_different", keys).empty());
  CHECK(did_you_mean("timout", keys) == "; did you mean 'timeout'?");
  CHECK(did_you_mean("xyzzy", keys).empty());
  CHECK(edit_distance("kitten", "sitting") == 3);
}
