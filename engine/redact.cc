#include "engine/redact.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::engine {

namespace {

constexpr std::string_view kMask = "***";
constexpr std::string_view kPrefix = "SLUICE_SECRET_";

// Writes all of `data` to `fd`; false on an error (errno set).
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Redactor::Redactor(const std::vector<std::string>& secrets) {
  auto add = [&](std::string_view s) {
    if (!s.empty() && std::find(patterns_.begin(), patterns_.end(), s) == patterns_.end()) patterns_.emplace_back(s);
  };
  for (const std::string& s : secrets) {
    add(s);
    if (s.find('\n') == std::string::npos) continue;
    size_t start = 0;
    while (start <= s.size()) {
      size_t nl = s.find('\n', start);
      std::string_view line(s.data() + start, (nl == std::string::npos ? s.size() : nl) - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      add(line);
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  std::stable_sort(patterns_.begin(), patterns_.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  longest_ = patterns_.empty() ? 0 : patterns_.front().size();
}

Redactor Redactor::from_environment(char** env) {
  std::vector<std::string> secrets;
  for (char** e = env; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.substr(0, kPrefix.size()) != kPrefix) continue;
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) secrets.emplace_back(kv.substr(eq + 1));
  }
  return Redactor(secrets);
}

size_t Redactor::scan(std::string_view buf, bool final, std::string& out, bool& changed) const {
  // Positions from `safe` on might begin a secret that continues past `buf`.
  const size_t safe = final ? buf.size() : buf.size() >= longest_ ? buf.size() - (longest_ - 1) : 0;
  size_t i = 0;
  while (i < safe) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const std::string& p : patterns_) {  // longest first: ties keep the longest
      size_t at = buf.find(p, i);
      if (at < best) best = at, best_len = p.size();
    }
    if (best == std::string_view::npos || best >= safe) break;
    out.append(buf.substr(i, best - i));
    out.append(kMask);
    i = best + best_len;
    changed = true;
  }
  if (i < safe) {
    out.append(buf.substr(i, safe - i));
    i = safe;
  }
  return i;
}

std::string Redactor::apply(std::string_view text) const {
  std::string out;
  if (patterns_.empty()) return std::string(text);
  bool changed = false;
  size_t done = scan(text, true, out, changed);
  out.append(text.substr(done));
  return out;
}

bool Redactor::apply_in_place(std::string& text) const {
  if (patterns_.empty()) return false;
  std::string out;
  bool changed = false;
  size_t done = scan(text, true, out, changed);
  if (!changed) return false;
  out.append(std::string_view(text).substr(done));
  text = std::move(out);
  return true;
}

std::string Redactor::redact_file(const std::string& path) const {
  if (patterns_.empty()) return {};
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno == ENOENT ? std::string() : "cannot read " + path + ": " + std::strerror(errno);
  const std::string temp = path + ".redacting";
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    std::string why = "cannot write " + temp + ": " + std::strerror(errno);
    ::close(in);
    return why;
  }
  std::string error, buf, redacted;
  bool changed = false;
  std::vector<char> chunk(1 << 16);
  for (;;) {
    ssize_t n = ::read(in, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read " + path + ": " + std::strerror(errno);
      break;
    }
    buf.append(chunk.data(), static_cast<size_t>(n));
    redacted.clear();
    size_t done = scan(buf, n == 0, redacted, changed);
    buf.erase(0, done);  // the tail that might start a secret waits for more
    if (!write_all(out, redacted)) {
      error = "cannot write " + temp + ": " + std::strerror(errno);
      break;
    }
    if (n == 0) break;
  }
  ::close(in);
  if (::close(out) != 0 && error.empty()) error = "cannot write " + temp + ": " + std::strerror(errno);
  if (error.empty() && changed && ::rename(temp.c_str(), path.c_str()) != 0)
    error = "cannot replace " + path + ": " + std::strerror(errno);
  if (!error.empty() || !changed) ::unlink(temp.c_str());
  return error;
}

}  // namespace sluice::engine
