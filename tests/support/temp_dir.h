#pragma once
// A temp folder for unit tests, removed with everything in it when the test
// ends. `path` is absolute with symlinks resolved, so tests may compare it
// with paths the code under test resolves.
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace sluice::test {

struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice_unit_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    char real[PATH_MAX];
    if (!::realpath(tmpl.c_str(), real)) throw std::runtime_error("realpath failed");
    path = real;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace sluice::test
