// deploy.release and deploy.rollback on a deployment folder:
//   <root>/releases/<version>/<artifact>   immutable once written
//   <root>/current -> releases/<version>   switched with rename(2): readers see
//                                          the old release or the new, never none
//   <root>/history.jsonl                   one line per switch, append-only
//   <root>/.lock                           flock: one switch at a time
// A release is copied into a staging folder, fsynced, and renamed into
// releases/ before `current` moves, so `current` never points at a partial copy.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugins/deploy/actions.h"
#include "plugins/support/files.h"
#include "plugins/support/http.h"

namespace sluice::plugins::deploy {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sluice::plugin::BadArgs;
using sluice::plugin::Failed;
using sluice::plugin::Host;

std::string errno_text() { return std::strerror(errno); }

struct Root {
  std::string dir, releases, current, history;
  explicit Root(const std::string& root)
      : dir(root), releases(root + "/releases"), current(root + "/current"), history(root + "/history.jsonl") {}
};

// Holds <root>/.lock for the action's duration; waits for another holder,
// giving up when the step is cancelled.
class RootLock {
 public:
  RootLock(const Root& r, const Host& host) {
    const std::string path = r.dir + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Failed("cannot open '" + path + "': " + errno_text());
    bool told = false;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) throw Failed("cannot lock '" + path + "': " + errno_text());
      if (!told) host.log("waiting for another deployment to " + r.dir + " to finish");
      told = true;
      sleep_cancellable(std::chrono::milliseconds(50), host);
    }
  }
  ~RootLock() { ::close(fd_); }  // releases the lock
  RootLock(const RootLock&) = delete;
  RootLock& operator=(const RootLock&) = delete;

 private:
  int fd_ = -1;
};

bool valid_version(const std::string& v) {
  if (v.empty() || v.size() > 128 || !std::isalnum(static_cast<unsigned char>(v[0]))) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// The version `current` points at, if any.
std::optional<std::string> current_version(const Root& r) {
  std::error_code ec;
  fs::path target = fs::read_symlink(r.current, ec);
  if (ec) return std::nullopt;
  return target.filename().string();
}

struct Event {
  std::string action, version, previous;
};

std::vector<Event> read_history(const Root& r) {
  std::vector<Event> out;
  std::ifstream in(r.history);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;  // a torn last line after a crash
    out.push_back({j.value("action", ""), j.value("version", ""), j.value("previous", "")});
  }
  return out;
}

// Which releases were current, oldest first, as rollbacks unwind them: a
// release pushes; a rollback to V pops back to V (or pushes V if it was
// never there). The top is made to agree with `current`.
std::vector<std::string> current_stack(const std::vector<Event>& history, const std::optional<std::string>& current) {
  std::vector<std::string> stack;
  auto move_to = [&](const std::string& v) {
    auto it = std::find(stack.begin(), stack.end(), v);
    if (it == stack.end()) stack.push_back(v);
    else stack.erase(it + 1, stack.end());
  };
  for (const auto& e : history) {
    if (e.action == "release") stack.push_back(e.version);
    else if (e.action == "rollback") move_to(e.version);
  }
  if (current && (stack.empty() || stack.back() != *current)) move_to(*current);
  return stack;
}

void append_history(const Root& r, const std::string& action, const std::string& version, const std::string& previous) {
  append_line(r.history,
              json{{"time", utc_timestamp()}, {"action", action}, {"version", version}, {"previous", previous}}.dump() + "\n");
}

// Points `current` at releases/<version>: a new symlink renamed over the old.
void switch_current(const Root& r, const std::string& version) {
  const std::string tmp = r.dir + "/.current.tmp";  // under the lock: one writer
  ::unlink(tmp.c_str());
  if (::symlink(("releases/" + version).c_str(), tmp.c_str()) != 0)
    throw Failed("cannot create a symlink in '" + r.dir + "': " + errno_text());
  if (::rename(tmp.c_str(), r.current.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Failed("cannot switch '" + r.current + "': " + std::strerror(err));
  }
  fsync_dir(r.dir);
}

// fsyncs every file and folder under `path` (and `path`).
void fsync_tree(const fs::path& path) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink()) continue;
    int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  fsync_dir(path.string());
}

std::string next_version(const Root& r) {
  uint64_t highest = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(r.releases, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name.size() < 19 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
      highest = std::max<uint64_t>(highest, std::stoull(name));
  }
  return std::to_string(highest + 1);
}

// Removes the oldest releases beyond `keep`, never the current one. Age is
// the order of their release lines in the history (unlisted ones are oldest).
void prune(const Root& r, int64_t keep, const std::string& current, const std::vector<Event>& history, const Host& host) {
  std::vector<std::string> order;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(r.releases, ec)) {
    const std::string name = e.path().filename().string();
    if (name[0] != '.' && e.is_directory()) order.push_back(name);
  }
  auto rank = [&](const std::string& v) {
    for (size_t i = history.size(); i-- > 0;)
      if (history[i].action == "release" && history[i].version == v) return static_cast<int64_t>(i);
    return int64_t{-1};
  };
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  int64_t excess = static_cast<int64_t>(order.size()) - keep;
  for (const auto& v : order) {
    if (excess <= 0) break;
    if (v == current) continue;
    fs::remove_all(r.releases + "/" + v, ec);
    if (ec) {
      host.warn("cannot remove old release " + v + ": " + ec.message());
      continue;
    }
    host.log("removed old release " + v);
    --excess;
  }
}

}  // namespace

std::string release(const Host& host, const Args& a) {
  const std::string artifact = a.string("artifact");
  const Root r(a.string("root"));
  const int64_t keep = a.integer("keep");
  if (keep < 1) throw BadArgs("'keep' must be 1 or more");
  auto version = a.opt_string("version");
  if (version && !valid_version(*version))
    throw BadArgs("'version' must be letters, digits, '.', '_' or '-' (starting with a letter or digit), not '" + *version + "'");
  std::error_code ec;
  const auto kind = fs::status(artifact, ec).type();
  if (kind != fs::file_type::regular && kind != fs::file_type::directory)
    throw Failed("cannot release '" + artifact + "': " + (ec ? ec.message() : "not a file or folder"));

  make_dirs(r.releases);
  RootLock lock(r, host);
  if (!version) version = next_version(r);
  const std::string dest = r.releases + "/" + *version;
  if (fs::exists(dest, ec))
    throw Failed("release " + *version + " already exists in " + r.releases + " (releases are immutable)");

  // Stage, then rename into place whole.
  std::string staging = r.releases + "/.staging-" + *version + "-XXXXXX";
  if (!::mkdtemp(staging.data())) throw Failed("cannot create a folder in '" + r.releases + "': " + errno_text());
  const std::string name = base_name(artifact);
  fs::copy(artifact, staging + "/" + name, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) {
    fs::remove_all(staging);
    throw Failed("cannot copy '" + artifact + "' into " + r.releases + ": " + ec.message());
  }
  host.check_cancelled();
  fsync_tree(staging);
  if (::rename(staging.c_str(), dest.c_str()) != 0) {
    const int err = errno;
    fs::remove_all(staging);
    throw Failed("cannot move release " + *version + " into place: " + std::strerror(err));
  }
  fsync_dir(r.releases);

  const auto previous = current_version(r);
  switch_current(r, *version);
  append_history(r, "release", *version, previous.value_or(""));
  host.log("released " + *version + " at " + dest + (previous ? " (was " + *previous + ")" : ""));
  prune(r, keep, *version, read_history(r), host);
  return json{{"version", *version},
              {"release", dest},
              {"path", dest + "/" + name},
              {"previous", previous.value_or("")}}
      .dump();
}

std::string rollback(const Host& host, const Args& a) {
  const Root r(a.string("root"));
  auto to = a.opt_string("to");
  if (to && !valid_version(*to)) throw BadArgs("'to' is not a release name: '" + *to + "'");
  std::error_code ec;
  if (!fs::is_directory(r.dir, ec)) throw Failed("'" + r.dir + "' is not a deployment folder");
  RootLock lock(r, host);
  const auto current = current_version(r);
  if (!current) throw Failed(r.current + " does not exist: nothing is released");
  if (!to) {
    const auto stack = current_stack(read_history(r), current);
    if (stack.size() < 2) throw Failed("no release before " + *current + " to roll back to");
    to = stack[stack.size() - 2];
  }
  if (*to == *current) throw Failed("release " + *to + " is already current");
  const std::string dest = r.releases + "/" + *to;
  if (!fs::is_directory(dest, ec)) throw Failed("release " + *to + " no longer exists in " + r.releases);
  switch_current(r, *to);
  append_history(r, "rollback", *to, *current);
  host.log("rolled back from " + *current + " to " + *to);
  return json{{"version", *to}, {"release", dest}, {"previous", *current}}.dump();
}

}  // namespace sluice::plugins::deploy
