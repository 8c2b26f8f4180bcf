#pragma once
// Helpers for end-to-end tests: a temp dir that cleans itself up, and a way
// to run the built `sluice` binary in it and capture what it printed.
#include <string>
#include <vector>

namespace sluice::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }
  // Writes `content` to `rel` (creating parent folders).
  void write(const std::string& rel, const std::string& content) const;
  std::string read(const std::string& rel) const;
  bool exists(const std::string& rel) const;

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// Runs SLUICE_BIN with `args` in `cwd`, stdin from /dev/null, with the test's
// environment plus `env` ("K=V"). Kills it after `timeout_s` seconds.
RunResult run_sluice(const std::vector<std::string>& args, const std::string& cwd,
                     const std::vector<std::string>& env = {}, int timeout_s = 120);

std::string read_file(const std::string& path);

}  // namespace sluice::test
