#pragma once
// Runs a test body in several forked processes at once, for tests of what
// many processes do to one database or store. No SQLite connection (or other
// state that must not be shared) may be open across the fork.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

namespace sluice::test {

// Runs `body(c)` in `n` forked children at once and returns their exit codes
// (0 when body returned, 1 when it threw, 128 + signal when killed). Never
// hangs: children still running after two minutes are killed.
inline std::vector<int> run_children(int n, const std::function<void(int)>& body) {
  std::cout.flush();
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int c = 0; c < n; ++c) {
    pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      int code = 0;
      try {
        body(c);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", c, e.what());
        code = 1;
      }
      _exit(code);
    }
    pids.push_back(pid);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::vector<int> codes(pids.size(), -1);
  size_t left = pids.size();
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t c = 0; c < pids.size(); ++c) {
      if (codes[c] != -1) continue;
      int status = 0;
      if (waitpid(pids[c], &status, WNOHANG) == pids[c]) {
        codes[c] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (size_t c = 0; c < pids.size(); ++c) {
    if (codes[c] != -1) continue;
    kill(pids[c], SIGKILL);
    waitpid(pids[c], nullptr, 0);
    codes[c] = 128 + SIGKILL;
  }
  codes.resize(static_cast<size_t>(n), -1);  // fork failures show as -1
  return codes;
}

}  // namespace sluice::test
