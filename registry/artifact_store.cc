#include "registry/artifact_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "dsl/paths.h"
#include "registry/db.h"
#include "registry/sha256.h"

namespace sluice::registry {
namespace {

constexpr std::string_view kTreeHeader = "sluice-tree 1\n";
constexpr std::string_view kStatCacheHeader = "sluice-stat-cache 1\n";
constexpr size_t kStatCacheMaxEntries = 200'000;  // about 22 MB of text
// SHA-256 of no bytes: an empty file's digest, known without reading it.
constexpr std::string_view kEmptyHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Temp files a Batch keeps open for its fsync sweep; more are synced early.
constexpr size_t kBatchOpenMax = 256;
// Files up to this size are read once, into memory, to be hashed and stored.
constexpr off_t kSmallFile = 64 * 1024;

// ---------------------------------------------------------------- helpers

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string sys_error(const std::string& what, const std::string& path, int err = errno) {
  return "cannot " + what + " '" + path + "': " + std::strerror(err);
}

std::string join(const std::string& dir, std::string_view name) {
  if (name.empty()) return dir;
  if (dir == "/") return "/" + std::string(name);
  return dir + "/" + std::string(name);
}

bool is_inside(const std::string& root, const std::string& p) {
  if (root == "/") return true;
  return p == root || (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/');
}

std::optional<std::string> real_path(const std::string& p, int* err = nullptr) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) {
    if (err != nullptr) *err = errno;
    return std::nullopt;
  }
  std::string s(r);
  std::free(r);
  return s;
}

// Splits on '/', dropping empty and "." components.
std::vector<std::string> components(std::string_view p) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) slash = p.size();
    std::string_view part = p.substr(start, slash - start);
    if (!part.empty() && part != ".") out.emplace_back(part);
    start = slash + 1;
  }
  return out;
}

std::string parent_of(std::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
}

std::string describe_type(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISLNK(m)) return "a symlink";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "a special file";
}

int64_t ns_of(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec; }

int64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ns_of(ts);
}

bool same_file_state(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         ns_of(a.st_mtim) == ns_of(b.st_mtim) && ns_of(a.st_ctim) == ns_of(b.st_ctim);
}

Result<void> fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Error{sys_error("open folder", dir)};
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return Error{sys_error("sync folder", dir)};
  return {};
}

// fsyncs many files at once, on threads of its own (started at its first
// sweep of more than one file, kept for the sweeps that follow). Concurrent
// fsyncs share the disk's cache flushes (the block layer merges flush
// requests that wait together): 200 small files took 2.2 ms each one after
// another and 0.2 ms each from 32 threads on the development VM while other
// jobs wrote to the same disk. (Linux AIO's IOCB_CMD_FSYNC does the same
// without threads, but tearing an AIO context down waits for an RCU grace
// period: 25 to 30 ms at every process exit.)
class FsyncSweep {
 public:
  FsyncSweep() = default;
  ~FsyncSweep() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  FsyncSweep(const FsyncSweep&) = delete;
  FsyncSweep& operator=(const FsyncSweep&) = delete;

  // fsyncs every one of `fds`; on failure, the first failing index and its
  // errno are passed to `describe`, whose message is returned.
  Result<void> run(const std::vector<int>& fds, const std::function<std::string(size_t, int)>& describe) {
    if (fds.empty()) return {};
    if (fds.size() > 1) start_threads();
    uint64_t generation = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fds_ = fds;
      next_ = 0;
      remaining_ = fds.size();
      failed_ = fds.size();
      generation = ++generation_;
    }
    work_cv_.notify_all();
    work(generation);  // this thread takes its share
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return remaining_ == 0; });
    if (failed_ < fds_.size()) return Error{describe(failed_, failed_errno_)};
    return {};
  }

 private:
  static constexpr unsigned kThreads = 16;

  void start_threads() {
    if (started_) return;
    started_ = true;
    try {
      for (unsigned i = 0; i < kThreads; ++i) threads_.emplace_back([this] { serve(); });
    } catch (const std::system_error&) {
      // No more threads to be had: the ones started (and the caller) do the work.
    }
  }

  void serve() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work(seen);
    }
  }

  // Takes files of sweep `generation` until none is left.
  void work(uint64_t generation) {
    for (;;) {
      size_t i = 0;
      int fd = -1;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (generation_ != generation || next_ >= fds_.size()) return;
        i = next_++;
        fd = fds_[i];
      }
      int err = ::fsync(fd) == 0 ? 0 : errno;
      std::lock_guard<std::mutex> lock(mu_);
      if (err != 0 && i < failed_) failed_ = i, failed_errno_ = err;
      if (--remaining_ == 0) done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  bool started_ = false, stop_ = false;
  // The sweep in progress (guarded by mu_).
  uint64_t generation_ = 0;
  std::vector<int> fds_;
  size_t next_ = 0, remaining_ = 0, failed_ = 0;
  int failed_errno_ = 0;
};

// Copies all of `in` (from offset 0) to `out`; returns the bytes copied or -1
// with errno set. copy_file_range lets the kernel copy (or reflink) without
// a trip through user space; plain reads and writes are the fallback.
int64_t copy_fd(int in, int out) {
  loff_t in_off = 0, out_off = 0;
  for (;;) {
    ssize_t n = ::copy_file_range(in, &in_off, out, &out_off, size_t{1} << 30, 0);
    if (n == 0) return in_off;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM) break;
    return -1;
  }
  std::vector<char> buf(size_t{1} << 20);
  for (;;) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), in_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return in_off;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(out, buf.data() + done, static_cast<size_t>(n - done), out_off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      done += w;
      out_off += w;
    }
    in_off += n;
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

Result<std::string> read_whole(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error{sys_error("open", path)};
  std::string out;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{sys_error("read", path)};
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Removes a file, symlink or folder tree without following symlinks, making
// read-only folders writable on the way down (materialized trees are 0555).
Result<void> remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error{sys_error("inspect", path)};
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error{sys_error("remove", path)};
    return {};
  }
  if ((st.st_mode & 0700) != 0700) ::chmod(path.c_str(), (st.st_mode & 07777) | 0700);
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Error{sys_error("open folder", path)};
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const std::string& n : names) {
    if (auto r = remove_tree(join(path, n)); !r) return r;
  }
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return Error{sys_error("remove folder", path)};
  return {};
}

// Runs fn(i) for i in [0, n) on up to `threads` threads; stops handing out
// work after the first error and returns it.
Result<void> parallel_for(size_t n, unsigned threads, const std::function<Result<void>(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string first_error;
  auto work = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      Result<void> r = fn(i);
      if (!r) {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.exchange(true)) first_error = r.error();
      }
    }
  };
  size_t count = std::min<size_t>(threads == 0 ? 1 : threads, n);
  std::vector<std::thread> pool;
  try {
    for (size_t t = 1; t < count; ++t) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started (and this one) do the work.
  }
  work();
  for (std::thread& t : pool) t.join();
  if (failed) return Error{first_error};
  return {};
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// ---------------------------------------------------------------- tree text

std::string encode_field(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '%' || c == 0x7f) {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

std::optional<std::string> decode_field(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = value(s[i + 1]), lo = value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  // Only the canonical encoding is accepted, so one tree has one listing.
  if (encode_field(out) != s) return std::nullopt;
  return out;
}

// "link" at `link_path` pointing at `target_path` (both relative to the
// folder), written relative to the link's folder.
std::string relative_target(std::string_view link_path, std::string_view target_path) {
  std::vector<std::string> from = components(parent_of(link_path));
  std::vector<std::string> to = components(target_path);
  size_t i = 0;
  while (i < from.size() && i < to.size() && from[i] == to[i]) ++i;
  std::string out;
  for (size_t j = i; j < from.size(); ++j) out += "../";
  for (size_t j = i; j < to.size(); ++j) out += to[j] + "/";
  if (out.empty()) return ".";
  out.pop_back();
  return out;
}

// ---------------------------------------------------------------- stat cache

struct StatKey {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  friend bool operator==(const StatKey&, const StatKey&) = default;
};

struct StatKeyHash {
  size_t operator()(const StatKey& k) const {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t v : {k.dev, k.ino, k.size, static_cast<uint64_t>(k.mtime_ns), static_cast<uint64_t>(k.ctime_ns)}) {
      h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return static_cast<size_t>(h);
  }
};

StatKey key_of(const struct stat& st) {
  return StatKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                 static_cast<uint64_t>(st.st_size), ns_of(st.st_mtim), ns_of(st.st_ctim)};
}

// (device, inode, size, mtime, ctime) -> digest, persisted as text with a
// trailing checksum; an unreadable or damaged file is treated as empty.
class StatCache {
 public:
  StatCache(std::string path, std::string tmp_dir) : path_(std::move(path)), tmp_dir_(std::move(tmp_dir)) {}

  std::optional<std::string> lookup(const StatKey& k) {
    std::lock_guard<std::mutex> lock(mu_);
    load_locked();
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    it->second.used = true;
    return it->second.hex;
  }

  void record(const StatKey& k, const std::string& hex) {
    std::lock_guard<std::mutex> lock(mu_);
    load_locked();
    map_[k] = Entry{hex, true};
    dirty_ = true;
  }

  Result<void> save() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dirty_) return {};
    // Keep what other processes saved since we loaded; our entries win.
    std::unordered_map<StatKey, Entry, StatKeyHash> disk;
    if (auto text = read_whole(path_)) parse(*text, disk);
    for (auto& [k, e] : disk) map_.try_emplace(k, Entry{e.hex, false});
    if (map_.size() > kStatCacheMaxEntries) {
      std::erase_if(map_, [](const auto& kv) { return !kv.second.used; });
    }
    std::string text(kStatCacheHeader);
    char line[160];
    for (const auto& [k, e] : map_) {
      int n = std::snprintf(line, sizeof line, "%llu %llu %llu %lld %lld ", static_cast<unsigned long long>(k.dev),
                            static_cast<unsigned long long>(k.ino), static_cast<unsigned long long>(k.size),
                            static_cast<long long>(k.mtime_ns), static_cast<long long>(k.ctime_ns));
      text.append(line, static_cast<size_t>(n));
      text += e.hex;
      text += '\n';
    }
    text += "end " + sha256_hex(text) + "\n";
    std::string tmp = join(tmp_dir_, "stat-cache-XXXXXX");
    Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return Error{sys_error("create", tmp)};
    if (!write_all(fd.get(), text) || ::fsync(fd.get()) != 0) {
      Error e{sys_error("write", tmp)};
      ::unlink(tmp.c_str());
      return e;
    }
    ::fchmod(fd.get(), 0644);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) {
      Error e{sys_error("replace", path_)};
      ::unlink(tmp.c_str());
      return e;
    }
    dirty_ = false;
    return {};
  }

 private:
  struct Entry {
    std::string hex;
    bool used = false;  // looked up or recorded by this process
  };

  void load_locked() {
    if (loaded_) return;
    loaded_ = true;
    if (auto text = read_whole(path_)) parse(*text, map_);
  }

  static void parse(std::string_view text, std::unordered_map<StatKey, Entry, StatKeyHash>& out) {
    if (text.substr(0, kStatCacheHeader.size()) != kStatCacheHeader) return;
    size_t end_line = text.rfind("end ");
    if (end_line == std::string_view::npos || text.size() != end_line + 4 + 64 + 1 ||
        sha256_hex(text.substr(0, end_line)) != text.substr(end_line + 4, 64)) {
      return;  // torn or damaged: start afresh (it is only a cache)
    }
    std::unordered_map<StatKey, Entry, StatKeyHash> parsed;
    std::string_view body = text.substr(kStatCacheHeader.size(), end_line - kStatCacheHeader.size());
    while (!body.empty()) {
      size_t nl = body.find('\n');
      if (nl == std::string_view::npos) return;
      std::string line(body.substr(0, nl));
      body.remove_prefix(nl + 1);
      unsigned long long dev = 0, ino = 0, size = 0;
      long long mt = 0, ct = 0;
      char hex[65] = {};
      if (std::sscanf(line.c_str(), "%llu %llu %llu %lld %lld %64s", &dev, &ino, &size, &mt, &ct, hex) != 6 ||
          std::strlen(hex) != 64 || !is_hex(hex)) {
        return;
      }
      parsed[StatKey{dev, ino, size, mt, ct}] = Entry{hex, false};
    }
    for (auto& [k, e] : parsed) out.try_emplace(k, std::move(e));
  }

  std::string path_, tmp_dir_;
  std::mutex mu_;
  bool loaded_ = false;
  bool dirty_ = false;
  std::unordered_map<StatKey, Entry, StatKeyHash> map_;
};

}  // namespace

// ---------------------------------------------------------------- public free functions

std::string Digest::str() const { return "sha256:" + hex + (kind == Kind::Tree ? ".tree" : ""); }

Result<Digest> Digest::parse(std::string_view text) {
  auto bad = [&] {
    return Error{"'" + std::string(text) + "' is not a digest: expected sha256:<64 hex digits>, with '.tree' for a folder"};
  };
  std::string_view s = text;
  if (s.substr(0, 7) != "sha256:") return bad();
  s.remove_prefix(7);
  Digest d;
  if (s.size() >= 5 && s.substr(s.size() - 5) == ".tree") {
    d.kind = Kind::Tree;
    s.remove_suffix(5);
  }
  if (s.size() != 64) return bad();
  for (char c : s) {
    char l = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return bad();
    d.hex += l;
  }
  return d;
}

std::string format_tree(const std::vector<TreeEntry>& entries) {
  std::string out(kTreeHeader);
  for (const TreeEntry& e : entries) {
    switch (e.type) {
      case TreeEntry::Type::File: out += "file "; out += e.executable ? "x " : "- "; out += e.hex; break;
      case TreeEntry::Type::Dir: out += "dir - -"; break;
      case TreeEntry::Type::Symlink: out += "link - " + encode_field(e.target); break;
    }
    out += ' ';
    out += encode_field(e.path);
    out += '\n';
  }
  return out;
}

Result<std::vector<TreeEntry>> parse_tree(std::string_view listing) {
  if (listing.substr(0, kTreeHeader.size()) != kTreeHeader) {
    return Error{"not a tree listing: the first line is not 'sluice-tree 1'"};
  }
  std::vector<TreeEntry> entries;
  std::unordered_map<std::string, TreeEntry::Type> types;
  std::string_view rest = listing.substr(kTreeHeader.size());
  size_t line_no = 1;
  while (!rest.empty()) {
    ++line_no;
    auto fail = [&](const std::string& why) { return Error{"tree listing line " + std::to_string(line_no) + ": " + why}; };
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return fail("no newline at the end");
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    std::string_view f[4];
    for (int i = 0; i < 3; ++i) {
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos) return fail("expected 4 fields");
      f[i] = line.substr(0, sp);
      line.remove_prefix(sp + 1);
    }
    f[3] = line;
    TreeEntry e;
    std::optional<std::string> path = decode_field(f[3]);
    if (!path) return fail("bad encoding in path '" + std::string(f[3]) + "'");
    e.path = *path;
    if (std::string why = dsl::unsafe_relative_path(e.path); !why.empty()) return fail(why);
    if (components(e.path).size() != static_cast<size_t>(std::count(e.path.begin(), e.path.end(), '/') + 1)) {
      return fail("'" + e.path + "' is not in canonical form");
    }
    if (f[0] == "file") {
      e.type = TreeEntry::Type::File;
      if (f[1] != "x" && f[1] != "-") return fail("mode must be 'x' or '-'");
      e.executable = f[1] == "x";
      if (f[2].size() != 64 || !is_hex(f[2])) return fail("bad digest '" + std::string(f[2]) + "'");
      e.hex = f[2];
    } else if (f[0] == "dir") {
      e.type = TreeEntry::Type::Dir;
      if (f[1] != "-" || f[2] != "-") return fail("a dir line reads 'dir - - <path>'");
    } else if (f[0] == "link") {
      e.type = TreeEntry::Type::Symlink;
      if (f[1] != "-") return fail("a link line reads 'link - <target> <path>'");
      std::optional<std::string> target = decode_field(f[2]);
      if (!target || target->empty()) return fail("bad encoding in link target '" + std::string(f[2]) + "'");
      e.target = *target;
    } else {
      return fail("unknown entry type '" + std::string(f[0]) + "'");
    }
    if (!entries.empty() && !(entries.back().path < e.path)) return fail("entries are not sorted by path or repeat one");
    std::string parent = parent_of(e.path);
    if (!parent.empty()) {
      auto it = types.find(parent);
      if (it == types.end() || it->second != TreeEntry::Type::Dir) return fail("'" + parent + "' is not a folder listed earlier");
    }
    types[e.path] = e.type;
    entries.push_back(std::move(e));
  }
  // A link target climbs with leading '..' only, then descends through
  // listed folders to a listed entry: the kernel then resolves it exactly as
  // it reads, and it cannot leave the folder.
  for (const TreeEntry& e : entries) {
    if (e.type != TreeEntry::Type::Symlink) continue;
    auto fail = [&](const std::string& why) {
      return Error{"tree listing: link '" + e.path + "' -> '" + e.target + "' " + why};
    };
    if (e.target.find('\0') != std::string::npos || e.target[0] == '/') return fail("is not a relative path");
    std::vector<std::string> at = components(parent_of(e.path));
    bool descending = false;
    std::vector<std::string> parts;
    {
      size_t start = 0;
      for (;;) {
        size_t slash = e.target.find('/', start);
        parts.emplace_back(e.target.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
      }
    }
    if (!(parts.size() == 1 && parts[0] == ".")) {
      for (size_t i = 0; i < parts.size(); ++i) {
        const std::string& p = parts[i];
        if (p.empty() || p == ".") return fail("is not in canonical form");
        if (p == "..") {
          if (descending) return fail("is not in canonical form");
          if (at.empty()) return fail("leads outside the folder");
          at.pop_back();
          continue;
        }
        descending = true;
        std::string so_far;
        for (const std::string& c : at) so_far += (so_far.empty() ? "" : "/") + c;
        so_far += (so_far.empty() ? "" : "/") + p;
        auto it = types.find(so_far);
        if (it == types.end()) return fail("names no entry of the folder");
        if (i + 1 < parts.size() && it->second != TreeEntry::Type::Dir) return fail("passes through a non-folder");
        at.push_back(p);
      }
    }
  }
  return entries;
}

// ---------------------------------------------------------------- the store

struct ArtifactStore::Impl {
  std::string root;  // <home>/cas, absolute
  std::string objects_dir, tmp_dir;
  StoreOptions options;
  int64_t racy_window_ns = 0;
  StatCache stat_cache;

  std::atomic<bool> tmpfile_ok{true};  // place_unsynced may use O_TMPFILE
  std::mutex kept_mu;                  // guards the two below (restore_kept)
  bool kept_db_tried = false;
  std::unique_ptr<Db> kept_db;         // <home>/sluice.db, read for kept small files' bytes
  std::atomic<uint64_t> files_hashed{0}, bytes_hashed{0}, stat_cache_hits{0}, objects_written{0},
      objects_existing{0}, files_linked{0}, files_copied{0}, objects_restored{0};

  Impl(std::string r, StoreOptions o)
      : root(std::move(r)),
        objects_dir(join(root, "sha256")),
        tmp_dir(join(root, "tmp")),
        options(o),
        stat_cache(join(root, "stat-cache"), tmp_dir) {
    if (options.racy_window.count() >= 0) {
      racy_window_ns = options.racy_window.count();
    } else {
      struct timespec res {};
      clock_getres(CLOCK_REALTIME_COARSE, &res);
      racy_window_ns = std::max<int64_t>(20'000'000, 2 * ns_of(res));
    }
    if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
  }

  std::string path_of(const std::string& hex) const {
    return objects_dir + "/" + hex.substr(0, 2) + "/" + hex.substr(2);
  }

  std::string fan_of(const std::string& hex) const { return objects_dir + "/" + hex.substr(0, 2); }

  // Moves a finished temp file (already 0444 and fsynced) into place unless
  // the object is there already, then makes its name durable; never
  // rewrites an existing object, but with `replace` (one a crash emptied).
  Result<void> commit(const std::string& tmp, const std::string& hex, bool replace = false) {
    bool fan_created = false;
    if (auto r = rename_into_place(tmp, hex, fan_created, replace); !r) return r;
    if (fan_created) {
      if (auto r = fsync_dir(objects_dir); !r) return r;
    }
    return fsync_dir(fan_of(hex));
  }

  // The rename of commit(), syncing nothing: the caller fsyncs the fan-out
  // folder, and sha256/ when `fan_created` was set. The temp file is gone
  // afterwards, whatever happened.
  // `replace`: an object there already (one a crash emptied) is replaced.
  Result<void> rename_into_place(const std::string& tmp, const std::string& hex, bool& fan_created,
                                 bool replace = false) {
    const std::string obj = path_of(hex);
    auto place = [&] {
      if (replace) return ::rename(tmp.c_str(), obj.c_str());
      int rc = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, obj.c_str(), RENAME_NOREPLACE);
      if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
        // No RENAME_NOREPLACE on this file system: link() fails on an existing name just as well.
        rc = ::link(tmp.c_str(), obj.c_str());
        if (rc == 0 || errno == EEXIST) ::unlink(tmp.c_str());
      }
      return rc;
    };
    // The fan-out folder exists but for the first object of its 256th of
    // the digests: create it only when the rename says it is missing.
    int rc = place();
    if (rc != 0 && errno == ENOENT) {
      std::string fan = fan_of(hex);
      if (::mkdir(fan.c_str(), 0755) == 0) {
        fan_created = true;
      } else if (errno != EEXIST) {
        Error e{sys_error("create folder", fan)};
        ::unlink(tmp.c_str());
        return e;
      }
      rc = place();
    }
    if (rc != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) {
        objects_existing++;  // a racing writer stored the same bytes first
        return {};
      }
      return Error{sys_error("store object", obj, err)};
    }
    objects_written++;
    return {};
  }

  bool present(const std::string& hex) const {
    struct stat st {};
    return ::lstat(path_of(hex).c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  // Writes a kept small file's object (SmallFiles::KeptByCaller) straight
  // into place, unsynced: an O_TMPFILE inode linked under its name once
  // whole, so it appears whole or not at all, with no temp name and no
  // rename. True when placed (or present already: linking never replaces);
  // false when this file system cannot (no O_TMPFILE, no way to link one),
  // and the caller then takes the temp file way.
  Result<bool> place_unsynced(const std::string& hex, std::string_view bytes, bool& fan_created) {
    if (!tmpfile_ok) return false;
    Fd fd(::open(tmp_dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444));
    if (!fd.valid()) {
      if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return Error{sys_error("create a temporary file in", tmp_dir)};
      tmpfile_ok = false;
      return false;
    }
    if (!write_all(fd.get(), bytes) || ::fchmod(fd.get(), 0444) != 0) return Error{sys_error("write", "a temporary file in " + tmp_dir)};
    const std::string obj = path_of(hex);
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd.get());
    // Through /proc (any user), else by AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
    auto link = [&] {
      if (::linkat(AT_FDCWD, proc, AT_FDCWD, obj.c_str(), AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST) return true;
      return ::linkat(fd.get(), "", AT_FDCWD, obj.c_str(), AT_EMPTY_PATH) == 0 || errno == EEXIST;
    };
    if (link()) return true;
    const std::string fan = fan_of(hex);
    struct stat st {};
    if (::stat(fan.c_str(), &st) != 0) {  // the first object of its fan-out folder
      if (::mkdir(fan.c_str(), 0755) == 0) fan_created = true;
      else if (errno != EEXIST) return Error{sys_error("create folder", fan)};
      if (link()) return true;
    }
    tmpfile_ok = false;  // e.g. no /proc and no capability: the temp file way from now on
    return false;
  }

  // For reading: the object is present, or it is a small file a crash lost
  // or emptied (SmallFiles::KeptByCaller) and it was restored from the bytes
  // the metadata store kept.
  // `st`, when given, receives the object's lstat.
  bool available(const std::string& hex, struct stat* st = nullptr) {
    struct stat own {};
    struct stat& s = st ? *st : own;
    const std::string path = path_of(hex);
    if (::lstat(path.c_str(), &s) == 0 && S_ISREG(s.st_mode) && (s.st_size > 0 || hex == kEmptyHex)) return true;
    return restore_kept(hex) && ::lstat(path.c_str(), &s) == 0;
  }

  // Rewrites object `hex` from the bytes <home>/sluice.db keeps for it
  // (artifacts.data), synced, replacing what a crash left; false when the
  // database keeps none (or cannot be read), or they are not its bytes.
  bool restore_kept(const std::string& hex) {
    std::optional<std::string> bytes;
    {
      // One connection for the store's life, opened at the first object
      // missing (a run whose cached outputs were all removed asks once per
      // output); none when there is no database, and none is created.
      std::lock_guard<std::mutex> lock(kept_mu);
      if (!kept_db_tried) {
        kept_db_tried = true;
        const std::string db_path = parent_of(root) + "/sluice.db";
        struct stat st {};
        try {
          if (::stat(db_path.c_str(), &st) == 0) kept_db = std::make_unique<Db>(db_path);
        } catch (const StoreError&) {
        }
      }
      if (!kept_db) return false;
      try {
        Stmt q = kept_db->prepare("SELECT data FROM artifacts WHERE digest = ?1 AND data IS NOT NULL");
        q.bind(1, "sha256:" + hex);
        if (q.step()) bytes = q.blob(0);
      } catch (const StoreError&) {
        return false;  // e.g. a database from before schema version 6
      }
    }
    if (!bytes || sha256_hex(*bytes) != hex) return false;
    if (!write_object(hex, *bytes, "restore-", /*replace=*/true)) return false;
    objects_restored++;
    return true;
  }

  Result<std::string> new_temp(Fd& fd, const char* prefix) {
    std::string tmp = tmp_dir + "/" + prefix + "XXXXXX";
    fd.reset(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return Error{sys_error("create a temporary file in", tmp_dir)};
    return tmp;
  }

  // Syncs and closes a temp file that is already 0444; removes it on failure.
  Result<void> finish_temp(Fd& fd, const std::string& tmp) {
    if (::fsync(fd.get()) != 0) {
      Error e{sys_error("write", tmp)};
      ::unlink(tmp.c_str());
      return e;
    }
    fd.reset();
    return {};
  }

  // Refuses anything but a regular file (`before` is its fstat).
  static Result<void> check_regular(const struct stat& before, const std::string& name) {
    if (S_ISDIR(before.st_mode)) return Error{"'" + name + "' is a folder, not a file (store folders with put_tree)"};
    if (!S_ISREG(before.st_mode)) return Error{"'" + name + "' is " + describe_type(before.st_mode) + ", not a regular file"};
    return {};
  }

  // The digest of an open regular file: from the stat cache when its object
  // is present (then `present_already` is set), else by hashing the file. A
  // file of at most kSmallFile bytes is read whole into `bytes` (when given)
  // and hashed there, so that copy_to_temp can write it without reading it
  // again: three system calls instead of seven for a typical step output.
  // `use_stat_cache` = false: always hashed (a kept small file's bytes are wanted).
  Result<std::string> digest_of(int fd, const std::string& name, const struct stat& before, bool& present_already,
                                std::string* bytes = nullptr, bool use_stat_cache = true) {
    const int64_t started = now_ns();
    const StatKey key = key_of(before);
    const bool cacheable = use_stat_cache && static_cast<uint64_t>(before.st_size) >= options.stat_cache_min_bytes;
    // A cached digest is trusted only to skip work: if its object is missing,
    // the bytes are hashed again rather than stored under a remembered name.
    if (auto cached = cacheable ? stat_cache.lookup(key) : std::nullopt; cached && present(*cached)) {
      stat_cache_hits++;
      present_already = true;
      return *cached;
    }
    FileHash h;
    if (bytes != nullptr && before.st_size <= kSmallFile) {
      bytes->resize(static_cast<size_t>(before.st_size));
      size_t got = 0;
      while (got < bytes->size()) {
        ssize_t n = ::pread(fd, bytes->data() + got, bytes->size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error{sys_error("read", name)};
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      bytes->resize(got);  // shorter than fstat said: caught as a change below
      h.hex = sha256_hex(*bytes);
      h.size = got;
    } else {
      h = sha256_fd(fd, name);
      if (!h.ok()) return Error{h.error};
      if (bytes != nullptr) bytes->clear();
    }
    files_hashed++;
    bytes_hashed += h.size;
    struct stat after {};
    if (::fstat(fd, &after) != 0) return Error{sys_error("inspect", name)};
    if (!same_file_state(before, after) || h.size != static_cast<uint64_t>(before.st_size)) {
      return Error{"'" + name + "' changed while it was being stored"};
    }
    // A write after our read in the same timestamp tick would leave the
    // key unchanged, so a file changed just now is not cached.
    if (cacheable && ns_of(before.st_ctim) < started - racy_window_ns) stat_cache.record(key, h.hex);
    return std::move(h.hex);
  }

  // Copies an open file into a new temp file in cas/tmp, left open in `out`
  // with mode 0444 and not synced; fails (leaving no temp file) if the
  // source changed meanwhile. `bytes`, when not empty, are the file's
  // content as digest_of read it, written instead of copying the file.
  Result<std::string> copy_to_temp(int fd, const std::string& name, const struct stat& before, Fd& out,
                                   const std::string* bytes = nullptr) {
    auto tmp = new_temp(out, "put-");
    if (!tmp) return tmp;
    if (bytes != nullptr && !bytes->empty()) {
      if (!write_all(out.get(), *bytes) || ::fchmod(out.get(), 0444) != 0) {
        Error e{sys_error("write", *tmp)};
        ::unlink(tmp->c_str());
        return e;
      }
      return tmp;
    }
    int64_t copied = before.st_size == 0 ? 0 : copy_fd(fd, out.get());
    struct stat after {};
    if (copied < 0 || ::fstat(fd, &after) != 0) {
      Error e{sys_error("copy", name)};
      ::unlink(tmp->c_str());
      return e;
    }
    if (!same_file_state(before, after) || copied != before.st_size) {
      ::unlink(tmp->c_str());
      return Error{"'" + name + "' changed while it was being stored"};
    }
    if (::fchmod(out.get(), 0444) != 0) {
      Error e{sys_error("write", *tmp)};
      ::unlink(tmp->c_str());
      return e;
    }
    return tmp;
  }

  // Hashes (or finds in the stat cache) an open regular file and stores it.
  Result<Digest> put_fd(int fd, const std::string& name) {
    struct stat before {};
    if (::fstat(fd, &before) != 0) return Error{sys_error("inspect", name)};
    if (auto r = check_regular(before, name); !r) return Error{r.error()};
    bool present_already = false;
    std::string bytes;
    auto hex = digest_of(fd, name, before, present_already, &bytes);
    if (!hex) return Error{hex.error()};
    if (present_already || present(*hex)) {
      objects_existing++;
      return Digest{Kind::File, *hex};
    }
    Fd out;
    auto tmp = copy_to_temp(fd, name, before, out, &bytes);
    if (!tmp) return Error{tmp.error()};
    if (auto r = finish_temp(out, *tmp); !r) return Error{r.error()};
    if (auto r = commit(*tmp, *hex); !r) return Error{r.error()};
    return Digest{Kind::File, *hex};
  }

  // Opens a file to store it (O_NONBLOCK: opening a FIFO must not wait for
  // a writer; it is refused after fstat).
  static Result<void> open_source(const std::string& path, bool nofollow, Fd& fd) {
    if (path.find('\0') != std::string::npos) return Error{"the path contains a NUL byte"};
    if (path.empty()) return Error{"the path is empty"};
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0)));
    if (!fd.valid()) return Error{sys_error("open", path)};
    return {};
  }

  Result<Digest> put_path(const std::string& path, bool nofollow) {
    Fd fd;
    if (auto r = open_source(path, nofollow, fd); !r) return Error{r.error()};
    return put_fd(fd.get(), path);
  }

  Result<Digest> put_bytes(std::string_view bytes) {
    std::string hex = sha256_hex(bytes);
    if (present(hex)) {
      objects_existing++;
      return Digest{Kind::File, hex};
    }
    if (auto r = write_object(hex, bytes, "put-"); !r) return Error{r.error()};
    return Digest{Kind::File, hex};
  }

  // Writes object `hex` holding `bytes` the full way (temp file, 0444,
  // fsync, rename, fsync of its folder); `replace`: over what is there.
  Result<void> write_object(const std::string& hex, std::string_view bytes, const char* prefix, bool replace = false) {
    Fd out;
    auto tmp = new_temp(out, prefix);
    if (!tmp) return Error{tmp.error()};
    if (!write_all(out.get(), bytes) || ::fchmod(out.get(), 0444) != 0) {
      Error e{sys_error("write", *tmp)};
      ::unlink(tmp->c_str());
      return e;
    }
    if (auto r = finish_temp(out, *tmp); !r) return r;
    return commit(*tmp, hex, replace);
  }

  // ---- folders

  struct Walked {
    TreeEntry entry;
    std::string abs;  // files: where to read them
  };

  Result<void> walk(const std::string& top, const std::string& rel_dir, std::vector<Walked>& out) {
    std::string dir_abs = join(top, rel_dir);
    Fd dfd(::open(dir_abs.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd.valid()) return Error{sys_error("open folder", dir_abs)};
    DIR* d = ::fdopendir(::dup(dfd.get()));
    if (d == nullptr) return Error{sys_error("read folder", dir_abs)};
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    auto refuse = [&](const std::string& why) { return Error{"folder output '" + top + "': " + why}; };
    for (const std::string& name : names) {
      std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      std::string abs = join(top, rel);
      struct stat st {};
      if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Error{sys_error("inspect", abs)};
      Walked w;
      w.entry.path = rel;
      if (S_ISREG(st.st_mode)) {
        w.entry.type = TreeEntry::Type::File;
        w.entry.executable = (st.st_mode & S_IXUSR) != 0;
        w.abs = abs;
        out.push_back(std::move(w));
      } else if (S_ISDIR(st.st_mode)) {
        w.entry.type = TreeEntry::Type::Dir;
        out.push_back(std::move(w));
        if (auto r = walk(top, rel, out); !r) return r;
      } else if (S_ISLNK(st.st_mode)) {
        char buf[PATH_MAX + 1];
        ssize_t n = ::readlinkat(dfd.get(), name.c_str(), buf, PATH_MAX);
        if (n < 0) return Error{sys_error("read symlink", abs)};
        std::string target(buf, static_cast<size_t>(n));
        int err = 0;
        std::optional<std::string> resolved = real_path(abs, &err);
        if (!resolved) {
          return refuse("'" + rel + "' is a symlink to '" + target + "', which cannot be resolved (" + std::strerror(err) + ")");
        }
        if (!is_inside(top, *resolved)) {
          return refuse("'" + rel + "' is a symlink to '" + target + "', which leads outside the folder");
        }
        std::string target_rel = *resolved == top ? std::string() : resolved->substr(top == "/" ? 1 : top.size() + 1);
        w.entry.type = TreeEntry::Type::Symlink;
        w.entry.target = relative_target(rel, target_rel);
        out.push_back(std::move(w));
      } else {
        return refuse("'" + rel + "' is " + describe_type(st.st_mode) + "; only files, folders and symlinks can be stored");
      }
    }
    return {};
  }

  Result<Digest> put_tree_resolved(const std::string& top) {
    struct stat st {};
    if (::stat(top.c_str(), &st) != 0) return Error{sys_error("inspect", top)};
    if (!S_ISDIR(st.st_mode)) return Error{"'" + top + "' is not a folder"};
    std::vector<Walked> walked;
    if (auto r = walk(top, "", walked); !r) return Error{r.error()};
    std::vector<size_t> files;
    for (size_t i = 0; i < walked.size(); ++i) {
      if (walked[i].entry.type == TreeEntry::Type::File) files.push_back(i);
    }
    Result<void> stored = parallel_for(files.size(), options.threads, [&](size_t k) -> Result<void> {
      Walked& w = walked[files[k]];
      auto d = put_path(w.abs, /*nofollow=*/true);
      if (!d) return Error{d.error()};
      w.entry.hex = d->hex;
      return {};
    });
    Result<void> saved = stat_cache.save();
    if (!stored) return Error{stored.error()};
    std::vector<TreeEntry> entries;
    entries.reserve(walked.size());
    for (Walked& w : walked) entries.push_back(std::move(w.entry));
    std::sort(entries.begin(), entries.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
    auto listing = put_bytes(format_tree(entries));
    if (!listing) return listing;
    (void)saved;  // a cache that could not be saved only costs a re-hash later
    return Digest{Kind::Tree, listing->hex};
  }

  // ---- materialisation

  Result<void> link_or_copy(const std::string& hex, const std::string& dst, bool executable) {
    std::string obj = path_of(hex);
    if (!executable && !options.materialize_copies) {
      if (::link(obj.c_str(), dst.c_str()) == 0) {
        files_linked++;
        return {};
      }
      // Across file systems, past the link limit, or where protected_hardlinks forbids: copy.
      if (errno != EXDEV && errno != EMLINK && errno != EPERM && errno != EACCES) {
        return Error{sys_error("link " + obj + " to", dst)};
      }
    }
    Fd in(::open(obj.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return Error{sys_error("open", obj)};
    Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out.valid()) return Error{sys_error("create", dst)};
    if (copy_fd(in.get(), out.get()) < 0) return Error{sys_error("copy to", dst)};
    if (::fchmod(out.get(), executable ? 0555 : 0444) != 0) return Error{sys_error("make read-only", dst)};
    files_copied++;
    return {};
  }

  // Creates `at` (which must not exist) holding the artifact; folders stay
  // writable until the end, then become 0555, `at` itself included only when
  // `seal_top` (a folder being renamed elsewhere must stay writable).
  Result<void> build(const Digest& d, const std::vector<TreeEntry>& entries, const std::string& at, bool seal_top) {
    if (d.kind == Kind::File) return link_or_copy(d.hex, at, false);
    if (::mkdir(at.c_str(), 0700) != 0) return Error{sys_error("create folder", at)};
    std::vector<std::string> dirs;
    for (const TreeEntry& e : entries) {
      std::string p = join(at, e.path);
      switch (e.type) {
        case TreeEntry::Type::Dir:
          if (::mkdir(p.c_str(), 0700) != 0) return Error{sys_error("create folder", p)};
          dirs.push_back(p);
          break;
        case TreeEntry::Type::File:
          if (auto r = link_or_copy(e.hex, p, e.executable); !r) return r;
          break;
        case TreeEntry::Type::Symlink:
          if (::symlink(e.target.c_str(), p.c_str()) != 0) return Error{sys_error("create symlink", p)};
          break;
      }
    }
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      if (::chmod(it->c_str(), 0555) != 0) return Error{sys_error("make read-only", *it)};
    }
    if (seal_top && ::chmod(at.c_str(), 0555) != 0) return Error{sys_error("make read-only", at)};
    return {};
  }

  // `dest` is absolute with a resolved (symlink-free) parent; `shown` is how
  // the caller named it.
  Result<void> materialize_resolved(const Digest& d, const std::string& dest, const std::string& shown,
                                    OnExisting on_existing) {
    if (is_inside(root, dest)) return Error{"'" + shown + "' is inside the artifact store"};
    if (is_inside(dest, root)) return Error{"'" + shown + "' contains the artifact store"};
    std::vector<TreeEntry> entries;
    if (d.kind == Kind::Tree) {
      auto t = read_tree(d);
      if (!t) return Error{t.error()};
      entries = std::move(*t);
      for (const TreeEntry& e : entries) {
        if (e.type == TreeEntry::Type::File && !available(e.hex)) {
          return Error{d.str() + ": its file '" + e.path + "' (sha256:" + e.hex + ") is not in the store"};
        }
      }
    } else if (!available(d.hex)) {
      return Error{d.str() + " is not in the store"};
    }
    struct stat old {};
    bool exists = ::lstat(dest.c_str(), &old) == 0;
    if (exists && on_existing == OnExisting::Refuse) return Error{"'" + shown + "' already exists"};

    // Build in cas/tmp and rename into place, so `dest` appears whole; when
    // dest is on another file system, build it in place instead.
    struct stat parent_st {}, tmp_st {};
    std::string parent = dest.substr(0, dest.rfind('/'));
    if (parent.empty()) parent = "/";
    if (::stat(parent.c_str(), &parent_st) != 0) return Error{sys_error("inspect", parent)};
    if (::stat(tmp_dir.c_str(), &tmp_st) != 0) return Error{sys_error("inspect", tmp_dir)};
    if (parent_st.st_dev == tmp_st.st_dev) {
      std::string stage = tmp_dir + "/materialize-XXXXXX";
      if (::mkdtemp(stage.data()) == nullptr) return Error{sys_error("create a temporary folder in", tmp_dir)};
      std::string item = stage + "/item";
      bool cross_device = false;
      Result<void> r = build(d, entries, item, false);
      if (r) r = place(item, dest, shown, exists, old, cross_device);
      if (r && d.kind == Kind::Tree && ::chmod(dest.c_str(), 0555) != 0) r = Error{sys_error("make read-only", dest)};
      Result<void> cleaned = remove_tree(stage);
      if (!cross_device) return r ? cleaned : r;
    }
    // In place: not atomic, and a failure removes what was built.
    if (exists) {
      if (auto r = remove_tree(dest); !r) return r;
    }
    Result<void> r = build(d, entries, dest, true);
    if (!r) (void)remove_tree(dest);
    return r;
  }

  // Renames the staged `item` to `dest`: no-replace when dest did not exist,
  // an atomic exchange when replacing (the old one is left at `item`).
  Result<void> place(const std::string& item, const std::string& dest, const std::string& shown, bool exists,
                     const struct stat& old, bool& cross_device) {
    unsigned flags = exists ? RENAME_EXCHANGE : RENAME_NOREPLACE;
    // A folder moving to another parent must be writable (its '..' changes).
    if (exists && S_ISDIR(old.st_mode) && (old.st_mode & 0200) == 0) ::chmod(dest.c_str(), (old.st_mode & 07777) | 0700);
    if (::renameat2(AT_FDCWD, item.c_str(), AT_FDCWD, dest.c_str(), flags) == 0) return {};
    if (errno == EXDEV) {
      cross_device = true;  // a bind mount: same device number, still another mount
      return Error{"cross-device"};
    }
    if (errno == EEXIST) return Error{"'" + shown + "' already exists"};
    if (errno != EINVAL && errno != ENOSYS) return Error{sys_error("move into place", shown)};
    // No renameat2 flags here: check, remove, rename (not atomic).
    struct stat st {};
    if (!exists && ::lstat(dest.c_str(), &st) == 0) return Error{"'" + shown + "' already exists"};
    if (exists) {
      if (auto r = remove_tree(dest); !r) return r;
    }
    if (::rename(item.c_str(), dest.c_str()) != 0) {
      if (errno == EXDEV) {
        cross_device = true;
        return Error{"cross-device"};
      }
      return Error{sys_error("move into place", shown)};
    }
    return {};
  }

  Result<std::vector<TreeEntry>> read_tree(const Digest& d) const {
    if (!present(d.hex)) return Error{d.str() + " is not in the store"};
    auto text = read_whole(path_of(d.hex));
    if (!text) return Error{text.error()};
    auto entries = parse_tree(*text);
    if (!entries) return Error{d.str() + " is not a valid tree: " + entries.error()};
    return entries;
  }

  // Every file under sha256/: (path, hex from the name, or "" when the name is no digest).
  Result<std::vector<std::pair<std::string, std::string>>> scan() const {
    std::vector<std::pair<std::string, std::string>> out;
    DIR* top = ::opendir(objects_dir.c_str());
    if (top == nullptr) return Error{sys_error("open folder", objects_dir)};
    std::vector<std::string> fans;
    while (dirent* e = ::readdir(top)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) fans.emplace_back(e->d_name);
    }
    ::closedir(top);
    for (const std::string& fan : fans) {
      std::string fan_path = objects_dir + "/" + fan;
      DIR* d = ::opendir(fan_path.c_str());
      if (d == nullptr) {
        out.emplace_back(fan_path, "");
        continue;
      }
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        std::string hex = fan + name;
        bool good = fan.size() == 2 && hex.size() == 64 && is_hex(hex);
        out.emplace_back(fan_path + "/" + name, good ? hex : "");
      }
      ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

ArtifactStore::ArtifactStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArtifactStore::ArtifactStore(ArtifactStore&&) noexcept = default;
ArtifactStore& ArtifactStore::operator=(ArtifactStore&&) noexcept = default;
ArtifactStore::~ArtifactStore() {
  if (impl_) (void)impl_->stat_cache.save();
}

Result<ArtifactStore> ArtifactStore::open(const std::string& home, StoreOptions options) {
  if (home.empty()) return Error{"the store's home is empty"};
  if (home.find('\0') != std::string::npos) return Error{"the store's home contains a NUL byte"};
  std::error_code ec;
  std::string abs = std::filesystem::absolute(home, ec).lexically_normal().string();
  if (ec) return Error{"cannot resolve '" + home + "': " + ec.message()};
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  std::string root = join(abs, "cas");
  for (const std::string& dir : {abs, root, join(root, "sha256"), join(root, "tmp")}) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Error{sys_error("create folder", dir)};
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Error{"'" + dir + "' is not a folder"};
  }
  return ArtifactStore(std::make_unique<Impl>(root, options));
}

const std::string& ArtifactStore::root() const { return impl_->root; }

Result<Digest> ArtifactStore::put_file(const std::string& path) {
  auto d = impl_->put_path(path, false);
  (void)impl_->stat_cache.save();
  return d;
}

namespace {

// `relative` under `root`, resolved through symlinks, refused when it leads
// outside `root`.
Result<std::string> resolve_inside(const std::string& root, const std::string& relative) {
  if (std::string why = dsl::unsafe_relative_path(relative); !why.empty()) return Error{why};
  int err = 0;
  auto root_real = real_path(root, &err);
  if (!root_real) return Error{sys_error("resolve", root, err)};
  std::string full = join(*root_real, relative);
  auto resolved = real_path(full, &err);
  if (!resolved) return Error{sys_error("resolve", full, err)};
  if (!is_inside(*root_real, *resolved)) {
    return Error{"'" + relative + "' leads outside '" + *root_real + "' (it resolves to '" + *resolved + "')"};
  }
  return *resolved;
}

}  // namespace

Result<Digest> ArtifactStore::put_file_at(const std::string& root, const std::string& relative) {
  auto resolved = resolve_inside(root, relative);
  if (!resolved) return Error{resolved.error()};
  auto d = impl_->put_path(*resolved, true);
  (void)impl_->stat_cache.save();
  return d;
}

Result<Digest> ArtifactStore::put_bytes(std::string_view bytes) { return impl_->put_bytes(bytes); }

Result<Digest> ArtifactStore::put_tree(const std::string& dir) {
  if (dir.empty()) return Error{"the path is empty"};
  if (dir.find('\0') != std::string::npos) return Error{"the path contains a NUL byte"};
  int err = 0;
  auto top = real_path(dir, &err);
  if (!top) return Error{sys_error("resolve", dir, err)};
  return impl_->put_tree_resolved(*top);
}

Result<Digest> ArtifactStore::put_tree_at(const std::string& root, const std::string& relative) {
  auto top = resolve_inside(root, relative);
  if (!top) return Error{top.error()};
  return impl_->put_tree_resolved(*top);
}

Result<void> ArtifactStore::materialize(const Digest& digest, const std::string& dest, OnExisting on_existing) {
  if (dest.empty()) return Error{"the path is empty"};
  if (dest.find('\0') != std::string::npos) return Error{"the path contains a NUL byte"};
  for (const std::string& c : components(dest)) {
    if (c == "..") return Error{"'" + dest + "' contains a '..' component"};
  }
  std::error_code ec;
  std::string abs = std::filesystem::absolute(dest, ec).lexically_normal().string();
  if (ec) return Error{"cannot resolve '" + dest + "': " + ec.message()};
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  size_t slash = abs.rfind('/');
  std::string name = abs.substr(slash + 1);
  if (name.empty()) return Error{"'" + dest + "' names no entry to create"};
  std::string parent = slash == 0 ? "/" : abs.substr(0, slash);
  int err = 0;
  auto parent_real = real_path(parent, &err);
  if (!parent_real) return Error{sys_error("resolve the folder of", dest, err)};
  return impl_->materialize_resolved(digest, join(*parent_real, name), dest, on_existing);
}

Result<void> ArtifactStore::materialize_at(const Digest& digest, const std::string& root, const std::string& relative,
                                           OnExisting on_existing) {
  if (std::string why = dsl::unsafe_relative_path(relative); !why.empty()) return Error{why};
  std::vector<std::string> parts = components(relative);
  if (parts.empty()) return Error{"'" + relative + "' names no entry inside '" + root + "'"};
  int err = 0;
  auto root_real = real_path(root, &err);
  if (!root_real) return Error{sys_error("resolve", root, err)};
  std::string parent = *root_real;
  for (size_t i = 0; i + 1 < parts.size(); ++i) parent = join(parent, parts[i]);
  auto parent_real = real_path(parent, &err);
  if (!parent_real) return Error{sys_error("resolve the folder of", relative, err)};
  if (!is_inside(*root_real, *parent_real)) {
    return Error{"'" + relative + "' leads outside '" + *root_real + "' (its folder resolves to '" + *parent_real + "')"};
  }
  return impl_->materialize_resolved(digest, join(*parent_real, parts.back()), relative, on_existing);
}

bool ArtifactStore::exists(const Digest& digest) const {
  if (!impl_->available(digest.hex)) return false;
  if (digest.kind == Kind::File) return true;
  auto entries = impl_->read_tree(digest);
  if (!entries) return false;
  return std::all_of(entries->begin(), entries->end(), [&](const TreeEntry& e) {
    return e.type != TreeEntry::Type::File || impl_->available(e.hex);
  });
}

std::string ArtifactStore::object_path(const Digest& digest) const { return impl_->path_of(digest.hex); }

Result<uint64_t> ArtifactStore::size(const Digest& digest) const {
  auto size_of = [&](const std::string& hex) -> Result<uint64_t> {
    struct stat st {};
    if (!impl_->available(hex, &st)) return Error{"sha256:" + hex + " is not in the store"};
    return static_cast<uint64_t>(st.st_size);
  };
  if (digest.kind == Kind::File) return size_of(digest.hex);
  auto entries = impl_->read_tree(digest);
  if (!entries) return Error{entries.error()};
  uint64_t total = 0;
  for (const TreeEntry& e : *entries) {
    if (e.type != TreeEntry::Type::File) continue;
    auto s = size_of(e.hex);
    if (!s) return s;
    total += *s;
  }
  return total;
}

Result<std::string> ArtifactStore::read(const Digest& digest) const {
  if (!impl_->available(digest.hex)) return Error{digest.str() + " is not in the store"};
  return read_whole(impl_->path_of(digest.hex));
}

Result<std::vector<TreeEntry>> ArtifactStore::read_tree(const Digest& digest) const { return impl_->read_tree(digest); }

Result<std::vector<VerifyIssue>> ArtifactStore::verify() const {
  auto objects = impl_->scan();
  if (!objects) return Error{objects.error()};
  std::vector<std::optional<VerifyIssue>> found(objects->size());
  (void)parallel_for(objects->size(), impl_->options.threads, [&](size_t i) -> Result<void> {
    const auto& [path, hex] = (*objects)[i];
    if (hex.empty()) {
      found[i] = VerifyIssue{path, "", "", "the name is not a digest"};
      return {};
    }
    FileHash h = sha256_file(path);
    if (!h.ok()) {
      found[i] = VerifyIssue{path, hex, "", h.error};
    } else if (h.hex != hex) {
      found[i] = VerifyIssue{path, hex, h.hex, ""};
    }
    return {};
  });
  std::vector<VerifyIssue> issues;
  for (auto& f : found) {
    if (f) issues.push_back(std::move(*f));
  }
  return issues;
}

Result<std::vector<ObjectInfo>> ArtifactStore::list() const {
  auto objects = impl_->scan();
  if (!objects) return Error{objects.error()};
  std::vector<ObjectInfo> out;
  for (const auto& [path, hex] : *objects) {
    struct stat st {};
    if (hex.empty() || ::lstat(path.c_str(), &st) != 0) continue;
    out.push_back(ObjectInfo{hex, static_cast<uint64_t>(st.st_size)});
  }
  return out;
}

Result<void> ArtifactStore::save_stat_cache() { return impl_->stat_cache.save(); }

// ---------------------------------------------------------------- batches

struct ArtifactStore::Batch::State {
  struct Pending {
    std::string hex, tmp;
    Fd fd;                 // open until synced; closed at once for a kept file
    bool synced = true;    // false: a small file the caller keeps (SmallFiles::KeptByCaller)
    bool replace = false;  // a kept file whose object is there with another size (a crash emptied it)
  };

  static constexpr size_t kPlaced = SIZE_MAX;  // by_hex: a kept file placed at once, nothing pending

  ArtifactStore::Impl* store;
  SmallFiles small = SmallFiles::Sync;
  bool fans_created = false;  // by kept files placed since the last commit
  std::vector<Pending> pending;
  std::unordered_map<std::string, size_t> by_hex;  // hex -> index in pending
  size_t open_fds = 0;
  FsyncSweep sweep;

  State(ArtifactStore::Impl* s, SmallFiles sm) : store(s), small(sm) {}
  ~State() { discard(); }

  void discard() {
    for (Pending& p : pending) {
      p.fd.reset();
      ::unlink(p.tmp.c_str());
    }
    pending.clear();
    by_hex.clear();
    open_fds = 0;
  }

  // fsyncs and closes every temp file still open, all at once.
  Result<void> sync_open() {
    std::vector<Pending*> open;
    std::vector<int> fds;
    for (Pending& p : pending) {
      if (!p.fd.valid()) continue;
      open.push_back(&p);
      fds.push_back(p.fd.get());
    }
    open_fds = 0;
    Result<void> r = sweep.run(fds, [&](size_t i, int err) { return sys_error("write", open[i]->tmp, err); });
    for (Pending* p : open) p->fd.reset();
    return r;
  }

  Result<Stored> put_file(const std::string& path, bool nofollow = false) {
    Fd fd;
    if (auto r = ArtifactStore::Impl::open_source(path, nofollow, fd); !r) return Error{r.error()};
    return put_open(std::move(fd), path);
  }

  // Stores the file open at `fd`; `path` names it in messages.
  Result<Stored> put_open(Fd fd, const std::string& path) {
    struct stat before {};
    if (::fstat(fd.get(), &before) != 0) return Error{sys_error("inspect", path)};
    if (auto r = ArtifactStore::Impl::check_regular(before, path); !r) return Error{r.error()};
    const auto size = static_cast<uint64_t>(before.st_size);
    const bool kept = small == SmallFiles::KeptByCaller && size <= kKeptMax;
    std::string hex, bytes;
    if (size == 0) {
      hex = kEmptyHex;
    } else {
      bool present_already = false;
      auto h = store->digest_of(fd.get(), path, before, present_already, &bytes, /*use_stat_cache=*/!kept);
      if (!h) return Error{h.error()};
      if (present_already) {
        store->objects_existing++;
        return Stored{Digest{Kind::File, *h}, size};
      }
      hex = std::move(*h);
    }
    // One lstat: present (for a kept file, with these bytes' size), or, for
    // a kept file, damaged (there otherwise: what a crash left).
    bool present = by_hex.count(hex) != 0, damaged = false;
    if (!present) {
      struct stat st {};
      const bool there = ::lstat(store->path_of(hex).c_str(), &st) == 0;
      present = there && S_ISREG(st.st_mode) && (!kept || static_cast<uint64_t>(st.st_size) == size);
      damaged = kept && there && !present;
    }
    if (present) {
      store->objects_existing++;
      return Stored{Digest{Kind::File, hex}, size};
    }
    if (kept && !damaged) {
      bool fan_created = false;
      auto placed = store->place_unsynced(hex, bytes, fan_created);
      if (!placed) return Error{placed.error()};
      if (*placed) {
        fans_created = fans_created || fan_created;
        by_hex.emplace(hex, kPlaced);
        store->objects_written++;
        return Stored{Digest{Kind::File, hex}, size, std::move(bytes)};
      }
    }
    Fd out;
    auto tmp = store->copy_to_temp(fd.get(), path, before, out, &bytes);
    if (!tmp) return Error{tmp.error()};
    by_hex.emplace(hex, pending.size());
    if (kept) {
      out.reset();  // never synced: the caller keeps its bytes
      pending.push_back(Pending{hex, std::move(*tmp), Fd{}, false, damaged});
      return Stored{Digest{Kind::File, hex}, size, std::move(bytes)};
    }
    pending.push_back(Pending{hex, std::move(*tmp), std::move(out)});
    if (++open_fds >= kBatchOpenMax) {
      if (auto r = sync_open(); !r) {
        discard();
        return Error{r.error()};
      }
    }
    return Stored{Digest{Kind::File, hex}, size};
  }

  Result<void> commit() {
    // A fan-out folder a kept file created must be durable for the synced
    // objects that may land in it later.
    const bool created_by_kept = std::exchange(fans_created, false);
    if (pending.empty()) {
      by_hex.clear();
      return created_by_kept ? fsync_dir(store->objects_dir) : Result<void>{};
    }
    if (auto r = sync_open(); !r) {
      discard();
      return r;
    }
    // Rename all, then make the names durable: each touched fan-out folder
    // once, and sha256/ when a fan-out folder was created.
    std::vector<std::string> fans;
    bool fan_created = false;
    Result<void> result;
    size_t i = 0;
    for (; i < pending.size() && result; ++i) {
      result = store->rename_into_place(pending[i].tmp, pending[i].hex, fan_created, pending[i].replace);
      if (pending[i].synced) fans.push_back(pending[i].hex.substr(0, 2));
    }
    for (; i < pending.size(); ++i) ::unlink(pending[i].tmp.c_str());
    pending.clear();
    by_hex.clear();
    if (!result) return result;
    if (fan_created || created_by_kept) {
      if (auto r = fsync_dir(store->objects_dir); !r) return r;
    }
    std::sort(fans.begin(), fans.end());
    fans.erase(std::unique(fans.begin(), fans.end()), fans.end());
    std::vector<std::string> fan_paths;
    std::vector<Fd> fan_fds;
    std::vector<int> fds;
    for (const std::string& fan : fans) {
      fan_paths.push_back(store->objects_dir + "/" + fan);
      fan_fds.emplace_back(::open(fan_paths.back().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fan_fds.back().valid()) return Error{sys_error("open folder", fan_paths.back())};
      fds.push_back(fan_fds.back().get());
    }
    if (auto r = sweep.run(fds, [&](size_t k, int err) { return sys_error("sync folder", fan_paths[k], err); }); !r) {
      return r;
    }
    (void)store->stat_cache.save();  // a cache that could not be saved only costs a re-hash later
    return {};
  }
};

ArtifactStore::Batch::Batch(ArtifactStore& store, SmallFiles small)
    : state_(std::make_unique<State>(store.impl_.get(), small)) {}
ArtifactStore::Batch::Batch(Batch&&) noexcept = default;
ArtifactStore::Batch& ArtifactStore::Batch::operator=(Batch&&) noexcept = default;
ArtifactStore::Batch::~Batch() = default;

Result<Stored> ArtifactStore::Batch::put_file(const std::string& path) { return state_->put_file(path); }
Result<Stored> ArtifactStore::Batch::put_file_at(const std::string& root, const std::string& relative) {
  // The common case in one open: openat2 with RESOLVE_BENEATH follows
  // symlinks only while they stay under `root` (resolve_inside's rule)
  // without resolving every component by hand. Anything else (a path that
  // leads out, a folder, no openat2) goes the long way, for its message.
  if (dsl::unsafe_relative_path(relative).empty()) {
    Fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) {
      struct open_how how {};
      how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
      how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
      Fd fd(static_cast<int>(::syscall(SYS_openat2, dir.get(), relative.c_str(), &how, sizeof how)));
      if (fd.valid()) {
        struct stat st {};
        if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) return state_->put_open(std::move(fd), join(root, relative));
      }
    }
  }
  auto resolved = resolve_inside(root, relative);
  if (!resolved) return Error{resolved.error()};
  return state_->put_file(*resolved, true);
}
Result<void> ArtifactStore::Batch::commit() { return state_->commit(); }
size_t ArtifactStore::Batch::pending() const { return state_->pending.size(); }

StoreStats ArtifactStore::stats() const {
  StoreStats s;
  s.files_hashed = impl_->files_hashed;
  s.bytes_hashed = impl_->bytes_hashed;
  s.stat_cache_hits = impl_->stat_cache_hits;
  s.objects_written = impl_->objects_written;
  s.objects_existing = impl_->objects_existing;
  s.objects_restored = impl_->objects_restored;
  s.files_linked = impl_->files_linked;
  s.files_copied = impl_->files_copied;
  return s;
}

}  // namespace sluice::registry
