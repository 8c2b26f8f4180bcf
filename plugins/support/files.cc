#include "plugins/support/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "dsl/units.h"

namespace sluice::plugins {

using sluice::plugin::Failed;

namespace {

std::string errno_text() { return std::strerror(errno); }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Failed("cannot create folder '" + dir + "': " + ec.message());
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

PendingFile::PendingFile(std::string target) : target_(std::move(target)) {
  const std::string dir = parent_of(target_);
  make_dirs(dir);
  std::string tmpl = dir + "/." + base_name(target_) + ".tmp-XXXXXX";
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0) throw Failed("cannot create a file in '" + dir + "': " + errno_text());
  ::fchmod(fd_, 0644);
  temp_ = tmpl;
}

PendingFile::~PendingFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void PendingFile::write(const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Failed("cannot write '" + target_ + "': " + errno_text());
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void PendingFile::reset() {
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0)
    throw Failed("cannot truncate '" + temp_ + "': " + errno_text());
}

void PendingFile::commit() {
  if (::fsync(fd_) != 0) throw Failed("cannot write '" + target_ + "': " + errno_text());
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw Failed("cannot move a file into place at '" + target_ + "': " + errno_text());
  committed_ = true;
  fsync_dir(parent_of(target_));
}

CopyResult copy_into(const std::string& source, PendingFile& out, uint64_t max_size, const sluice::plugin::Host& host) {
  int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Failed("cannot read '" + source + "': " + errno_text());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Failed("'" + source + "' is not a regular file");
  if (max_size && static_cast<uint64_t>(st.st_size) > max_size)
    throw Failed("'" + source + "' is larger than max_size " + dsl::format_size(max_size));
  registry::Sha256 hash;
  CopyResult r;
  std::vector<char> buf(1 << 20);
  for (;;) {
    host.check_cancelled();
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Failed("cannot read '" + source + "': " + errno_text());
    if (n == 0) break;
    r.bytes += static_cast<uint64_t>(n);
    if (max_size && r.bytes > max_size)  // it grew while we read
      throw Failed("'" + source + "' is larger than max_size " + dsl::format_size(max_size));
    hash.update(buf.data(), static_cast<size_t>(n));
    out.write(buf.data(), static_cast<size_t>(n));
  }
  r.sha256 = hash.finish();
  return r;
}

std::string url_scheme(const std::string& s) {
  const size_t colon = s.find("://");
  if (colon == std::string::npos || colon == 0) return "";
  const std::string scheme = s.substr(0, colon);
  if (!std::all_of(scheme.begin(), scheme.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'; }))
    return "";
  return lower(scheme);
}

std::string local_path_of(const std::string& s) {
  const std::string scheme = url_scheme(s);
  if (scheme.empty()) return s;
  if (scheme != "file") return "";
  std::string rest = s.substr(7);  // after "file://"
  if (rest.rfind("localhost/", 0) == 0) rest.erase(0, 9);
  std::string out;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size() && hex_digit(rest[i + 1]) >= 0 && hex_digit(rest[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(rest[i + 1]) * 16 + hex_digit(rest[i + 2]));
      i += 2;
    } else {
      out += rest[i];
    }
  }
  return out;
}

void append_line(const std::string& path, const std::string& line) {
  make_dirs(parent_of(path));
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Failed("cannot append to '" + path + "': " + errno_text());
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Failed("cannot append to '" + path + "': " + std::strerror(err));
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void check_sha256(const std::string& what, const std::string& expected, const std::string& actual) {
  if (lower(expected) != actual) throw Failed("sha256 mismatch for " + what + ": expected " + expected + ", got " + actual);
}

}  // namespace sluice::plugins
