#include "engine/cli_format.h"

#include <cstdio>
#include <ctime>

namespace sluice::engine {

const OptionSpec kHomeOption{"home", 0, "DIR", "the state folder (default: $SLUICE_HOME or ./.sluice)"};
const OptionSpec kJsonOption{"json", 0, "", "print JSON"};

std::string iso_time(std::optional<int64_t> ms) {
  if (!ms) return "-";
  std::time_t t = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string count_noun(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string format_bytes(int64_t bytes) {
  if (bytes < 1000) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1000 && unit < 4) v /= 1000, ++unit;
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
  return buf;
}

std::optional<registry::ArtifactRow> find_artifact(registry::Store& store, const std::string& text, std::string& error) {
  if (auto exact = store.artifact(text)) return exact;
  std::string prefix = text.rfind("sha256:", 0) == 0 ? text.substr(7) : text;
  bool hex = prefix.size() >= 4 && prefix.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (hex && prefix.size() < 64) {
    std::optional<registry::ArtifactRow> found;
    for (registry::ArtifactRow& a : store.list_artifacts()) {
      if (a.digest.compare(7, prefix.size(), prefix) != 0) continue;
      if (found) {
        error = "'" + text + "' names more than one artifact (" + found->digest + ", " + a.digest + "): give more digits";
        return std::nullopt;
      }
      found = std::move(a);
    }
    if (found) return found;
  }
  error = "no artifact '" + text + "' is recorded";
  return std::nullopt;
}

}  // namespace sluice::engine
