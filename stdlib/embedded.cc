#include "stdlib/embedded.h"

#include <algorithm>

namespace sluice::stdlib {

namespace {

std::string module_path(std::string_view name) {
  std::string path(name);
  std::replace(path.begin(), path.end(), '.', '/');
  return path + ".lua";
}

}  // namespace

const EmbeddedFile* find_module(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) return nullptr;
  const std::string path = module_path(name);
  for (const EmbeddedFile& f : embedded_files())
    if (f.path == path) return &f;
  return nullptr;
}

std::vector<std::string> module_names() {
  std::vector<std::string> out;
  for (const EmbeddedFile& f : embedded_files()) {
    std::string name(f.path.substr(0, f.path.size() - 4));  // without ".lua"
    std::replace(name.begin(), name.end(), '/', '.');
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace sluice::stdlib
