#include "e2e/openapi_check.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::test {

namespace {

using nlohmann::json;

const json& spec() {
  static const json doc = [] {
    std::ifstream in(SLUICE_OPENAPI_JSON);
    if (!in) throw std::runtime_error("cannot read " SLUICE_OPENAPI_JSON " (generated from docs/openapi.yaml)");
    return json::parse(in);
  }();
  return doc;
}

// "#/components/schemas/Run" -> that node.
const json& resolve(const json& node) {
  const json* at = &node;
  for (int hops = 0; at->is_object() && at->contains("$ref") && hops < 16; ++hops) {
    std::string ref = (*at)["$ref"];
    if (ref.rfind("#/", 0) != 0) throw std::runtime_error("unsupported $ref " + ref);
    at = &spec().at(json::json_pointer(ref.substr(1)));
  }
  return *at;
}

std::string shown(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool type_is(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  throw std::runtime_error("unknown schema type " + type);
}

// The first mismatch of `v` against `schema` at `path`, or "".
std::string check(const json& v, const json& schema_ref, const std::string& path) {
  const json& s = resolve(schema_ref);
  if (v.is_null()) {
    if (s.value("nullable", false)) return "";
    if (!s.contains("type") && !s.contains("allOf") && !s.contains("$ref")) return "";  // any value
    return path + ": null is not allowed";
  }
  if (s.contains("allOf"))
    for (const json& part : s["allOf"])
      if (std::string e = check(v, part, path); !e.empty()) return e;
  if (s.contains("type") && !type_is(v, s["type"]))
    return path + ": " + shown(v) + " is not " + s["type"].get<std::string>();
  if (s.contains("enum")) {
    bool found = false;
    for (const json& e : s["enum"]) found = found || e == v;
    if (!found) return path + ": " + shown(v) + " is not one of " + s["enum"].dump();
  }
  if (v.is_number()) {
    if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>()) return path + ": below the minimum";
    if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>()) return path + ": above the maximum";
  }
  if (v.is_string()) {
    const std::string& text = v.get_ref<const std::string&>();
    if (s.contains("minLength") && text.size() < s["minLength"].get<size_t>()) return path + ": too short";
    if (s.contains("maxLength") && text.size() > s["maxLength"].get<size_t>()) return path + ": too long";
    if (s.contains("pattern") && !std::regex_search(text, std::regex(s["pattern"].get<std::string>())))
      return path + ": " + shown(v) + " does not match " + s["pattern"].get<std::string>();
    static const std::regex kDateTime(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
    if (s.value("format", "") == "date-time" && !std::regex_match(text, kDateTime))
      return path + ": " + shown(v) + " is not an RFC 3339 date-time";
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const json& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return path + ": the required member '" + r.get<std::string>() + "' is missing";
    for (const auto& [key, value] : v.items()) {
      const std::string at = path + "." + key;
      if (props.contains(key)) {
        if (std::string e = check(value, props[key], at); !e.empty()) return e;
      } else if (s.contains("additionalProperties")) {
        const json& extra = s["additionalProperties"];
        if (extra.is_boolean() && !extra.get<bool>()) return at + ": not in the schema";
        if (extra.is_object())
          if (std::string e = check(value, extra, at); !e.empty()) return e;
      }
    }
  }
  if (v.is_array() && s.contains("items"))
    for (size_t i = 0; i < v.size(); ++i)
      if (std::string e = check(v[i], s["items"], path + "[" + std::to_string(i) + "]"); !e.empty()) return e;
  return "";
}

// The spec's path template for `path` ("/api/v1/runs/{run_id}"), or "".
std::string find_template(const std::string& path) {
  auto split = [](const std::string& p) {
    std::vector<std::string> parts;
    std::stringstream ss(p);
    for (std::string part; std::getline(ss, part, '/');) parts.push_back(part);
    return parts;
  };
  const std::vector<std::string> want = split(path);
  for (const auto& [tmpl, item] : spec()["paths"].items()) {
    const std::vector<std::string> have = split(tmpl);
    if (have.size() != want.size()) continue;
    bool ok = true;
    for (size_t i = 0; ok && i < have.size(); ++i)
      ok = (have[i].size() > 2 && have[i].front() == '{' && !want[i].empty()) || have[i] == want[i];
    if (ok) return tmpl;
  }
  return "";
}

std::string check_error_body(const std::string& where, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return where + ": the body is not JSON";
  std::string e = check(j, json{{"$ref", "#/components/schemas/Error"}}, "$");
  return e.empty() ? "" : where + ": " + e;
}

}  // namespace

std::string openapi_mismatch(const std::string& method, const std::string& target, int status,
                             const std::string& content_type, const std::string& body) {
  const std::string path = target.substr(0, target.find('?'));
  std::string where = method + " " + path + " " + std::to_string(status);
  const std::string tmpl = find_template(path);
  if (tmpl.empty()) {
    if (status != 404) return where + ": an undocumented path must be a 404";
    return check_error_body(where, body);
  }
  std::string lower = method;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const json& item = spec()["paths"][tmpl];
  if (!item.contains(lower)) {
    if (status != 405) return where + ": " + method + " is not documented for " + tmpl + ", so it must be a 405";
    return check_error_body(where, body);
  }
  const json& responses = item[lower]["responses"];
  const std::string code = std::to_string(status);
  if (!responses.contains(code)) return where + ": status " + code + " is not documented for " + method + " " + tmpl;
  const json& response = resolve(responses[code]);
  if (!response.contains("content")) return body.empty() ? "" : where + ": a body where none is documented";
  std::string media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  if (!response["content"].contains(media)) return where + ": media type '" + media + "' is not documented";
  if (media != "application/json") return "";
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return where + ": the body is not JSON";
  std::string e = check(j, response["content"][media]["schema"], "$");
  return e.empty() ? "" : where + ": " + e;
}

}  // namespace sluice::test
