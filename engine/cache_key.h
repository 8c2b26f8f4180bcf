#pragma once
// A step's cache key: SHA-256 over named parts, each the digest of one thing
// the step's result depends on ("command", "env", "outputs", "input:data",
// "value:pick.auc", "plugin:storage", ...). The parts are recorded with the
// step so `sluice why` can name the part that changed. Pure functions.
#include <functional>
#include <string>
#include <vector>

namespace sluice::engine {

struct KeyPart {
  std::string part;    // see docs/store.md, "The step cache"
  std::string digest;  // "sha256:<hex>" of the part's content; a plugin's version as written
};

// Collects parts and hashes them in name order (order of add() does not matter).
class KeyBuilder {
 public:
  void add_digest(std::string part, std::string digest);  // e.g. an input's artifact digest
  void add_text(std::string part, std::string_view text);  // hashed here
  // The key (64 hex digits) and the parts, sorted by name. A part added twice keeps the last.
  std::string finish(std::vector<KeyPart>& parts) const;

 private:
  std::vector<KeyPart> parts_;
};

// One line per difference between the parts of an earlier execution and of
// this one, in part order: "command changed", "input 'data' changed:
// sha256:1a2b3c4d5e6f.. -> sha256:0f1e2d3c4b5a..", "value 'pick.auc' changed:
// 0.81 -> 0.84", "input 'extra' added", ... `value_text(part, digest)` may
// turn a value part's digest back into its text ("" = unknown).
std::vector<std::string> describe_key_changes(
    const std::vector<KeyPart>& before, const std::vector<KeyPart>& now,
    const std::function<std::string(const std::string& part, const std::string& digest, bool before)>& value_text = {});

// "sha256:1a2b3c4d5e6f.." for text; other strings as they are.
std::string short_digest(const std::string& digest);

}  // namespace sluice::engine
