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

// Starts SLUICE_BIN in the background (stdout/stderr to the given files,
// the test's environment plus `env`); returns its pid. Pair with wait_sluice().
int spawn_sluice(const std::vector<std::string>& args, const std::string& cwd, const std::string& out_path,
                 const std::string& err_path, const std::vector<std::string>& env = {});
// Waits for a spawned sluice (killing it after `timeout_s`); its exit status.
int wait_sluice(int pid, int timeout_s = 60);

// Whether a process with this pid still exists (zombies count as gone).
bool process_alive(int pid);

// Polls until `path` exists or `timeout_ms` passes.
bool wait_for_file(const std::string& path, int timeout_ms = 10000);

std::string read_file(const std::string& path);

}  // namespace sluice::test
