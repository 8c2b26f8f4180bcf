#include "engine/git_commit.h"

#include <cstdio>

namespace sluice::engine {

std::string git_commit(const std::string& dir) {
  std::string cmd = "git -C '" + dir + "' rev-parse HEAD 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {};
  char buf[64] = {};
  std::string out = std::fgets(buf, sizeof buf, p) ? std::string(buf) : std::string();
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : std::string();
}

}  // namespace sluice::engine
