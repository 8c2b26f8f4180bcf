#include "engine/lazy_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace sluice::engine {

LazyLog::LazyLog(LazyLog&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), error_(std::move(other.error_)) {}

LazyLog& LazyLog::operator=(LazyLog&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    error_ = std::move(other.error_);
  }
  return *this;
}

void LazyLog::write(std::string_view bytes) {
  if (bytes.empty()) return;
  if (fd_ < 0) {
    if (path_.empty() || !error_.empty()) return;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error_ = "cannot open log file '" + path_ + "': " + std::strerror(errno);
      return;
    }
  }
  const char* data = bytes.data();
  std::size_t size = bytes.size();
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk loses log text, not the step
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void LazyLog::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::engine
