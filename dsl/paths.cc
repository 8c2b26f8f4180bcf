#include "dsl/paths.h"

namespace sluice::dsl {

std::string unsafe_relative_path(std::string_view path) {
  if (path.empty()) return "the path is empty";
  if (path.find('\0') != std::string_view::npos) return "the path contains a NUL byte";
  if (path[0] == '/') return "'" + std::string(path) + "' is absolute where a relative path is expected";
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") return "'" + std::string(path) + "' contains a '..' component";
    if (slash == std::string_view::npos) return {};
    start = slash + 1;
  }
}

}  // namespace sluice::dsl
