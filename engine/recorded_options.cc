#include "engine/recorded_options.h"

#include <nlohmann/json.hpp>

namespace sluice::engine {

using nlohmann::json;

std::string to_json(const RecordedOptions& o) {
  json j = json::object();
  if (!o.only.empty()) j["only"] = o.only;
  if (!o.from.empty()) j["from"] = o.from;
  if (o.keep_going) j["keep_going"] = true;
  if (!o.reuse.empty()) j["reuse"] = o.reuse;
  if (!o.pinned_inputs.empty()) j["pinned_inputs"] = o.pinned_inputs;
  return j.dump();
}

bool parse_recorded_options(const std::string& text, RecordedOptions& out, std::string& error) {
  out = RecordedOptions{};
  const json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (!j.is_object()) {
    error = "the recorded options are not a JSON object: " + text;
    return false;
  }
  auto text_of = [&](const char* key, std::string& into) {
    auto it = j.find(key);
    if (it == j.end()) return true;
    if (!it->is_string()) return error = std::string("the recorded option '") + key + "' is not a string", false;
    into = it->get<std::string>();
    return true;
  };
  if (!text_of("only", out.only) || !text_of("from", out.from)) return false;
  if (auto it = j.find("keep_going"); it != j.end()) {
    if (!it->is_boolean()) return error = "the recorded option 'keep_going' is not true or false", false;
    out.keep_going = it->get<bool>();
  }
  try {
    if (auto it = j.find("reuse"); it != j.end()) out.reuse = it->get<std::map<std::string, std::string>>();
    if (auto it = j.find("pinned_inputs"); it != j.end())
      out.pinned_inputs = it->get<std::map<std::string, std::map<std::string, std::string>>>();
  } catch (const json::exception&) {
    error = "the recorded options 'reuse' and 'pinned_inputs' must map names to strings: " + text;
    return false;
  }
  return true;
}

}  // namespace sluice::engine
