#pragma once
// Files for the built-in plugins: outputs and release copies appear whole or
// not at all (written beside their target, fsynced, renamed into place).
// Errors throw sluice::plugin::Failed with a one-line message naming the path.
#include <cstdint>
#include <string>

#include "registry/sha256.h"
#include "sluice/plugin.hpp"

namespace sluice::plugins {

// A file being written beside `target`; commit() renames it over `target`.
// Destroyed uncommitted, it is removed: a failed action leaves no partial file.
class PendingFile {
 public:
  explicit PendingFile(std::string target);  // creates the target's folder if needed
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  void write(const char* data, size_t size);
  void reset();    // back to empty (another attempt starts over)
  void commit();   // fsync, rename over the target, fsync the folder
  const std::string& target() const { return target_; }

 private:
  std::string target_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

struct CopyResult {
  std::string sha256;  // hex
  uint64_t bytes = 0;
};

// Copies the regular file `source` into `out`, hashing it; throws Failed if
// it cannot be read or is larger than `max_size` (0 = no limit). Polls the
// host for cancellation between chunks.
CopyResult copy_into(const std::string& source, PendingFile& out, uint64_t max_size, const sluice::plugin::Host& host);

void make_dirs(const std::string& dir);     // mkdir -p; throws Failed
void fsync_dir(const std::string& dir);     // makes renames in `dir` durable
std::string parent_of(const std::string& path);
std::string base_name(const std::string& path);

// A plain path, or the path of a file:// URL (percent-decoded); "" for other URLs.
std::string local_path_of(const std::string& url_or_path);
// The scheme of a URL in lower case ("http"), or "" for a plain path.
std::string url_scheme(const std::string& url_or_path);

// Appends `line` (which ends with '\n') to `path` with one O_APPEND write, so
// concurrent appenders never interleave within a line, then fsyncs it.
// Creates the file (0644) and its folder if needed.
void append_line(const std::string& path, const std::string& line);

// The current UTC time as "2024-05-01T12:00:00Z".
std::string utc_timestamp();

// "sha256 mismatch for WHAT: expected X, got Y" unless they agree (case-insensitive).
void check_sha256(const std::string& what, const std::string& expected, const std::string& actual);

}  // namespace sluice::plugins
