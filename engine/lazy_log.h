// An attempt's log file, created at its first byte of output: an attempt that
// writes nothing leaves no file and no log digest (docs/running.md, "Logs").
// Shared by the process runner (run steps) and the action pool (Lua steps,
// plugin actions). Not thread-safe; movable.
#pragma once

#include <string>
#include <string_view>

namespace sluice::engine {

class LazyLog {
 public:
  LazyLog() = default;
  explicit LazyLog(std::string path) : path_(std::move(path)) {}  // "" = discard everything
  LazyLog(LazyLog&& other) noexcept;
  LazyLog& operator=(LazyLog&& other) noexcept;
  LazyLog(const LazyLog&) = delete;
  LazyLog& operator=(const LazyLog&) = delete;
  ~LazyLog() { close(); }

  // Appends bytes, creating (or truncating) the file with O_CREAT|O_TRUNC,
  // mode 0644, at the first non-empty write. A file that cannot be created
  // loses this and every later write, and error() says why; a failed write
  // (a full disk) loses that text only.
  void write(std::string_view bytes);

  // Closes the file; the log is complete once this returns.
  void close();

  // "cannot open log file 'PATH': REASON" once creating the file failed, else "".
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string error_;
};

}  // namespace sluice::engine
