// Cache keys: what goes in, what changes them, and how `sluice why` words a change.
#include <catch2/catch.hpp>

#include "engine/cache_key.h"
#include "registry/sha256.h"

using namespace sluice::engine;

namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

std::string key(const std::vector<std::pair<std::string, std::string>>& texts, std::vector<KeyPart>* parts = nullptr) {
  KeyBuilder kb;
  for (const auto& [p, t] : texts) kb.add_text(p, t);
  std::vector<KeyPart> out;
  std::string k = kb.finish(out);
  if (parts) *parts = out;
  return k;
}

}  // namespace

TEST_CASE("cache key: independent of the order parts are added, sensitive to every part") {
  std::vector<KeyPart> parts;
  std::string k = key({{"command", "echo 1"}, {"env", ""}, {"outputs", "o=o.txt\n"}}, &parts);
  CHECK(k.size() == 64);
  CHECK(k == key({{"outputs", "o=o.txt\n"}, {"command", "echo 1"}, {"env", ""}}));
  CHECK(k != key({{"command", "echo 2"}, {"env", ""}, {"outputs", "o=o.txt\n"}}));
  CHECK(k != key({{"command", "echo 1"}, {"env", "A=1\n"}, {"outputs", "o=o.txt\n"}}));
  CHECK(k != key({{"command", "echo 1"}, {"env", ""}, {"outputs", "o=p.txt\n"}}));
  CHECK(k != key({{"command", "echo 1"}, {"env", ""}, {"outputs", "o=o.txt\n"}, {"input:data", "x"}}));
  // Parts come back sorted, each the SHA-256 of its text.
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].part == "command");
  CHECK(parts[0].digest == "sha256:" + sluice::registry::sha256_hex("echo 1"));
  CHECK(parts[2].part == "outputs");
  // Moving text between parts changes the key (parts are framed, not concatenated).
  CHECK(key({{"command", "ab"}, {"env", "c"}}) != key({{"command", "a"}, {"env", "bc"}}));
}

TEST_CASE("cache key: why names each changed, added and removed part") {
  std::vector<KeyPart> before = {{"command", kA}, {"env", kA}, {"input:data", kA}, {"input:old", kA},
                                 {"plugin:storage", "1.0.0"}, {"value:prep.rows", kA}};
  std::vector<KeyPart> now = {{"command", kB}, {"env", kA}, {"input:data", kB}, {"input:new", kA},
                              {"plugin:storage", "1.1.0"}, {"value:prep.rows", kB}};
  auto values = [](const std::string& part, const std::string&, bool was) {
    CHECK(part == "value:prep.rows");
    return std::string(was ? "'2'" : "'3'");
  };
  CHECK(describe_key_changes(before, now, values) ==
        std::vector<std::string>{"command changed",
                                 "input 'data' changed: sha256:aaaaaaaaaaaa.. -> sha256:bbbbbbbbbbbb..",
                                 "input 'new' added",
                                 "input 'old' removed",
                                 "plugin 'storage' changed: 1.0.0 -> 1.1.0",
                                 "value 'prep.rows' changed: '2' -> '3'"});
  // Without the values' texts, their digests are shown.
  CHECK(describe_key_changes({{"value:prep.rows", kA}}, {{"value:prep.rows", kB}}) ==
        std::vector<std::string>{"value 'prep.rows' changed: sha256:aaaaaaaaaaaa.. -> sha256:bbbbbbbbbbbb.."});
  CHECK(describe_key_changes(before, before).empty());
  CHECK(describe_key_changes({{"script", kA}, {"output:train[lr=0.1].model", kA}},
                             {{"script", kB}, {"output:train[lr=0.1].model", kB}}) ==
        std::vector<std::string>{"upstream output 'train[lr=0.1].model' changed: sha256:aaaaaaaaaaaa.. -> sha256:bbbbbbbbbbbb..",
                                 "script changed"});
}
