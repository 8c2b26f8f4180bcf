#include "engine/cache_key.h"

#include <algorithm>
#include <map>

#include "registry/sha256.h"

namespace sluice::engine {

namespace {

// Bumped when what goes into a key changes, so old entries stop matching.
constexpr std::string_view kKeyFormat = "sluice-cache-key 1\n";

struct Named {
  std::string kind;  // "input", "value", ... or the whole part name
  std::string name;  // after the colon; "" for plain parts
};

Named split(const std::string& part) {
  size_t colon = part.find(':');
  if (colon == std::string::npos) return {part, {}};
  return {part.substr(0, colon), part.substr(colon + 1)};
}

std::string what(const std::string& part) {
  Named n = split(part);
  if (n.name.empty()) {
    if (n.kind == "command") return "command";
    if (n.kind == "script") return "script";
    if (n.kind == "action") return "action and its arguments";
    if (n.kind == "env") return "env";
    if (n.kind == "outputs") return "outputs declaration";
    if (n.kind == "params") return "params";
    if (n.kind == "stdlib") return "Lua standard library (a new sluice version)";
    return "'" + part + "'";
  }
  if (n.kind == "input") return "input '" + n.name + "'";
  if (n.kind == "value") return "value '" + n.name + "'";
  if (n.kind == "output") return "upstream output '" + n.name + "'";
  if (n.kind == "plugin") return "plugin '" + n.name + "'";
  return "'" + part + "'";
}

}  // namespace

void KeyBuilder::add_digest(std::string part, std::string digest) {
  parts_.push_back({std::move(part), std::move(digest)});
}

void KeyBuilder::add_text(std::string part, std::string_view text) {
  parts_.push_back({std::move(part), "sha256:" + registry::sha256_hex(text)});
}

std::string KeyBuilder::finish(std::vector<KeyPart>& parts) const {
  std::map<std::string, std::string> sorted;
  for (const KeyPart& p : parts_) sorted[p.part] = p.digest;
  std::string text(kKeyFormat);
  parts.clear();
  for (auto& [part, digest] : sorted) {
    // Part names hold no tab or newline (identifiers, step and node names).
    text += part + '\t' + digest + '\n';
    parts.push_back({part, digest});
  }
  return registry::sha256_hex(text);
}

std::string short_digest(const std::string& digest) {
  if (digest.rfind("sha256:", 0) == 0 && digest.size() >= 7 + 12) return digest.substr(0, 7 + 12) + "..";
  return digest;
}

std::vector<std::string> describe_key_changes(
    const std::vector<KeyPart>& before, const std::vector<KeyPart>& now,
    const std::function<std::string(const std::string&, const std::string&, bool)>& value_text) {
  std::map<std::string, std::pair<const KeyPart*, const KeyPart*>> all;
  for (const KeyPart& p : before) all[p.part].first = &p;
  for (const KeyPart& p : now) all[p.part].second = &p;
  auto shown = [&](const KeyPart& p, bool was) {
    Named n = split(p.part);
    if (n.kind == "value" && value_text) {
      std::string v = value_text(p.part, p.digest, was);
      if (!v.empty()) return v;
    }
    return short_digest(p.digest);
  };
  std::vector<std::string> out;
  for (const auto& [part, pair] : all) {
    const auto [old, cur] = pair;
    if (old && cur) {
      if (old->digest == cur->digest) continue;
      Named n = split(part);
      if (n.name.empty() && n.kind != "plugin") out.push_back(what(part) + " changed");
      else out.push_back(what(part) + " changed: " + shown(*old, true) + " -> " + shown(*cur, false));
    } else if (cur) {
      out.push_back(what(part) + " added");
    } else {
      out.push_back(what(part) + " removed");
    }
  }
  return out;
}

}  // namespace sluice::engine
