#include "engine/proc_info.h"

#include <fstream>
#include <sstream>
#include <string>

namespace sluice::engine {

std::optional<int64_t> process_start_time(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string state;
  fields >> state;
  if (state == "Z" || state == "X") return std::nullopt;
  std::string field;
  for (int i = 4; i < 22 && fields >> field; ++i) {
  }
  int64_t start = 0;
  if (!(fields >> start)) return std::nullopt;
  return start;
}

bool process_is_running(int pid, int64_t start) {
  auto now = process_start_time(pid);
  return now && *now == start;
}

}  // namespace sluice::engine
