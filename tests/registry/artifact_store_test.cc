#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dsl/paths.h"
#include "registry/artifact_store.h"
#include "registry/sqlite_store.h"
#include "registry/store.h"
#include "registry/sha256.h"

using namespace sluice::registry;
namespace fs = std::filesystem;

namespace {

// A fresh folder under $TMPDIR, removed (read-only parts included) at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + std::string("/sluice-cas-XXXXXX");
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = fs::canonical(tmpl).string();
  }
  ~TempDir() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) chmod(it->path().c_str(), 0755);
    }
    chmod(path_.c_str(), 0755);
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st;
}

mode_t mode_of(const std::string& path) { return stat_of(path).st_mode & 07777; }

ArtifactStore open_store(const std::string& home, StoreOptions options = {}) {
  auto s = ArtifactStore::open(home, options);
  REQUIRE(s.ok());
  return std::move(s).value();
}

// Options under which every file, however small or fresh, goes through the stat cache.
StoreOptions caching_everything() {
  StoreOptions o;
  o.stat_cache_min_bytes = 0;
  o.racy_window = std::chrono::nanoseconds(0);
  return o;
}

std::string hex_of(const std::string& content) { return sha256_hex(content); }

size_t count_files(const std::string& dir) {
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

// A small folder output with every kind of entry the store keeps.
void make_tree(const std::string& dir) {
  write_file(dir + "/a.txt", "alpha\n");
  write_file(dir + "/sub/b.bin", std::string("\0\1\2\3", 4));
  write_file(dir + "/sub/deeper/c.csv", "x,y\n1,2\n");
  write_file(dir + "/run.sh", "#!/bin/sh\necho hi\n");
  chmod((dir + "/run.sh").c_str(), 0755);
  fs::create_directories(dir + "/empty");
}

}  // namespace

TEST_CASE("artifact_store: open creates cas with sha256/ and tmp/ under the home") {
  TempDir t;
  auto store = open_store(t / "home");
  CHECK(store.root() == t / "home/cas");
  CHECK(fs::is_directory(t / "home/cas/sha256"));
  CHECK(fs::is_directory(t / "home/cas/tmp"));
  auto bad = ArtifactStore::open("");
  CHECK(bad.error() == "the store's home is empty");
}

TEST_CASE("artifact_store: digests print and parse") {
  std::string hex = hex_of("abc");
  CHECK(Digest{Kind::File, hex}.str() == "sha256:" + hex);
  CHECK(Digest{Kind::Tree, hex}.str() == "sha256:" + hex + ".tree");
  auto file = Digest::parse("sha256:" + hex);
  REQUIRE(file.ok());
  CHECK(*file == Digest{Kind::File, hex});
  auto tree = Digest::parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD.tree");
  REQUIRE(tree.ok());
  CHECK(*tree == Digest{Kind::Tree, hex});
  for (const std::string& bad : std::vector<std::string>{"", "md5:abc", "sha256:", "sha256:" + hex + "0", "sha256:" + hex.substr(1) + "g",
                          hex, "sha256:" + hex + ".dir"}) {
    INFO(bad);
    auto d = Digest::parse(bad);
    CHECK_FALSE(d.ok());
    CHECK(d.error() == "'" + bad + "' is not a digest: expected sha256:<64 hex digits>, with '.tree' for a folder");
  }
}

TEST_CASE("artifact_store: put_file stores the bytes read-only under sha256/<2 hex>/<62 hex>") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "model.bin", "weights");
  auto d = store.put_file(t / "model.bin");
  REQUIRE(d.ok());
  std::string hex = hex_of("weights");
  CHECK(*d == Digest{Kind::File, hex});
  CHECK(store.object_path(*d) == t / "home/cas/sha256/" + hex.substr(0, 2) + "/" + hex.substr(2));
  CHECK(read_file(store.object_path(*d)) == "weights");
  CHECK(mode_of(store.object_path(*d)) == 0444);
  CHECK(store.exists(*d));
  CHECK(store.size(*d).value() == 7);
  CHECK(store.read(*d).value() == "weights");
  auto listed = store.list();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().hex == hex);
  CHECK(listed->front().size == 7);
  CHECK(read_file(t / "model.bin") == "weights");  // the source is left alone
  CHECK(mode_of(t / "model.bin") == 0644);
  CHECK(fs::is_empty(t / "home/cas/tmp"));

  auto bytes = store.put_bytes("weights");
  REQUIRE(bytes.ok());
  CHECK(*bytes == *d);
  Digest absent{Kind::File, hex_of("nothing")};
  CHECK_FALSE(store.exists(absent));
  CHECK(store.read(absent).error() == absent.str() + " is not in the store");
  CHECK(store.size(absent).error() == absent.str() + " is not in the store");
}

TEST_CASE("artifact_store: identical content is stored once and never rewritten") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "one", "same bytes");
  write_file(t / "two", "same bytes");
  auto a = store.put_file(t / "one");
  REQUIRE(a.ok());
  struct stat before = stat_of(store.object_path(*a));
  auto b = store.put_file(t / "two");
  REQUIRE(b.ok());
  CHECK(*a == *b);
  struct stat after = stat_of(store.object_path(*a));
  CHECK(before.st_ino == after.st_ino);
  CHECK(before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
  CHECK(store.stats().objects_written == 1);
  CHECK(store.stats().objects_existing == 1);
  CHECK(count_files(t / "home/cas/sha256") == 1);
}

TEST_CASE("artifact_store: concurrent puts of the same content from 4 threads store one object") {
  TempDir t;
  std::string content(3 << 20, 'z');
  for (int i = 0; i < 4; ++i) write_file(t / ("src" + std::to_string(i)), content);
  for (bool shared : {false, true}) {
    INFO((shared ? "one shared store" : "a store per thread"));
    std::string home = t / (shared ? "shared" : "separate");
    auto common = open_store(home);
    std::vector<std::string> digests(4), errors(4);
    std::vector<StoreStats> stats(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        auto own = ArtifactStore::open(home);
        ArtifactStore& store = shared ? common : own.value();
        auto d = store.put_file(t / ("src" + std::to_string(i)));
        if (d.ok()) digests[i] = d->str();
        else errors[i] = d.error();
        if (!shared) stats[i] = own->stats();
      });
    }
    for (auto& th : threads) th.join();
    uint64_t written = 0;
    for (int i = 0; i < 4; ++i) {
      CHECK(errors[i].empty());
      CHECK(digests[i] == "sha256:" + hex_of(content));
      written += stats[i].objects_written;
    }
    if (shared) written = common.stats().objects_written;
    CHECK(written == 1);
    CHECK(count_files(home + "/cas/sha256") == 1);
    CHECK(fs::is_empty(home + "/cas/tmp"));
    CHECK(read_file(home + "/cas/sha256/" + hex_of(content).substr(0, 2) + "/" + hex_of(content).substr(2)) == content);
  }
}

TEST_CASE("artifact_store: concurrent puts of the same content from 4 processes store one object") {
  TempDir t;
  std::string content(2 << 20, 'p');
  write_file(t / "src", content);
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto store = ArtifactStore::open(t / "home");
      bool ok = store.ok() && store->put_file(t / "src").ok();
      _exit(ok ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(count_files(t / "home/cas/sha256") == 1);
  CHECK(fs::is_empty(t / "home/cas/tmp"));
}

TEST_CASE("artifact_store: put_file refuses folders and special files") {
  TempDir t;
  auto store = open_store(t / "home");
  fs::create_directories(t / "dir");
  CHECK(store.put_file(t / "dir").error() == "'" + t / "dir" + "' is a folder, not a file (store folders with put_tree)");
  REQUIRE(mkfifo((t / "pipe").c_str(), 0644) == 0);
  CHECK(store.put_file(t / "pipe").error() == "'" + t / "pipe" + "' is a FIFO, not a regular file");
  CHECK(store.put_file(t / "missing").error() == "cannot open '" + t / "missing" + "': No such file or directory");
}

TEST_CASE("artifact_store: a tree listing is canonical text") {
  std::vector<TreeEntry> entries = {
      {TreeEntry::Type::File, false, hex_of("a"), "", "a b%c"},
      {TreeEntry::Type::Dir, false, "", "", "d"},
      {TreeEntry::Type::File, true, hex_of("x"), "", "d/run"},
      {TreeEntry::Type::Symlink, false, "", "../a b%c", "d/to-a"},
      {TreeEntry::Type::File, false, hex_of("n"), "", "new\nline"},
  };
  std::string text = format_tree(entries);
  CHECK(text == "sluice-tree 1\n"
                "file - " + hex_of("a") + " a%20b%25c\n"
                "dir - - d\n"
                "file x " + hex_of("x") + " d/run\n"
                "link - ../a%20b%25c d/to-a\n"
                "file - " + hex_of("n") + " new%0Aline\n");
  auto parsed = parse_tree(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == entries);
}

TEST_CASE("artifact_store: a malformed or unsafe tree listing is refused with its line") {
  std::string h = hex_of("a");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"tree 1\n", "not a tree listing: the first line is not 'sluice-tree 1'"},
      {"sluice-tree 1\nfile - " + h + " b\nfile - " + h + " a\n",
       "tree listing line 3: entries are not sorted by path or repeat one"},
      {"sluice-tree 1\nfile - " + h + " a\nfile - " + h + " a\n",
       "tree listing line 3: entries are not sorted by path or repeat one"},
      {"sluice-tree 1\nfile - " + h + " d/a\n", "tree listing line 2: 'd' is not a folder listed earlier"},
      {"sluice-tree 1\nlink - x d\nfile - " + h + " d/a\n", "tree listing line 3: 'd' is not a folder listed earlier"},
      {"sluice-tree 1\nfile - " + h + " ../a\n", "tree listing line 2: '../a' contains a '..' component"},
      {"sluice-tree 1\nfile - " + h + " /etc/passwd\n",
       "tree listing line 2: '/etc/passwd' is absolute where a relative path is expected"},
      {"sluice-tree 1\nfile - " + h + " a%00b\n", "tree listing line 2: the path contains a NUL byte"},
      {"sluice-tree 1\nfile - " + h + " ./a\n", "tree listing line 2: './a' is not in canonical form"},
      {"sluice-tree 1\nfile - " + h + " a%2fb\n", "tree listing line 2: bad encoding in path 'a%2fb'"},
      {"sluice-tree 1\nfile - abc a\n", "tree listing line 2: bad digest 'abc'"},
      {"sluice-tree 1\nfile w " + h + " a\n", "tree listing line 2: mode must be 'x' or '-'"},
      {"sluice-tree 1\nfifo - - a\n", "tree listing line 2: unknown entry type 'fifo'"},
      {"sluice-tree 1\nfile - " + h + " a", "tree listing line 2: no newline at the end"},
      {"sluice-tree 1\nlink - .. up\n", "tree listing: link 'up' -> '..' leads outside the folder"},
      {"sluice-tree 1\ndir - - d\nlink - ../../x d/l\n", "tree listing: link 'd/l' -> '../../x' leads outside the folder"},
      {"sluice-tree 1\nlink - /etc l\n", "tree listing: link 'l' -> '/etc' is not a relative path"},
      {"sluice-tree 1\nlink - x l\n", "tree listing: link 'l' -> 'x' names no entry of the folder"},
      {"sluice-tree 1\ndir - - d\nlink - d/.. l\n", "tree listing: link 'l' -> 'd/..' is not in canonical form"},
      {"sluice-tree 1\nlink - . dot\nlink - dot/x l\n", "tree listing: link 'l' -> 'dot/x' passes through a non-folder"},
      {"sluice-tree 1\nfile - " + h + " f\nlink - f/x l\n", "tree listing: link 'l' -> 'f/x' passes through a non-folder"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text);
    auto r = parse_tree(text);
    CHECK_FALSE(r.ok());
    CHECK(r.error() == message);
  }
}

TEST_CASE("artifact_store: tree digests are stable and sensitive to renames, content and modes") {
  TempDir t;
  auto store = open_store(t / "home");
  make_tree(t / "one");
  make_tree(t / "two");
  auto a = store.put_tree(t / "one");
  REQUIRE(a.ok());
  CHECK(a->kind == Kind::Tree);
  auto b = store.put_tree(t / "two");
  REQUIRE(b.ok());
  CHECK(*a == *b);  // same content elsewhere, other inodes and times: same digest
  CHECK(store.read(*a).value() == "sluice-tree 1\n"
                                  "file - " + hex_of("alpha\n") + " a.txt\n"
                                  "dir - - empty\n"
                                  "file x " + hex_of("#!/bin/sh\necho hi\n") + " run.sh\n"
                                  "dir - - sub\n"
                                  "file - " + hex_of(std::string("\0\1\2\3", 4)) + " sub/b.bin\n"
                                  "dir - - sub/deeper\n"
                                  "file - " + hex_of("x,y\n1,2\n") + " sub/deeper/c.csv\n");
  CHECK(store.exists(*a));
  CHECK(store.size(*a).value() == 6 + 4 + 8 + 18);
  for (const char* f : {"alpha\n", "x,y\n1,2\n"}) CHECK(store.exists(Digest{Kind::File, hex_of(f)}));

  fs::rename(t / "two/sub/b.bin", t / "two/sub/b2.bin");
  auto renamed = store.put_tree(t / "two");
  REQUIRE(renamed.ok());
  CHECK(*renamed != *a);
  fs::rename(t / "two/sub/b2.bin", t / "two/sub/b.bin");
  CHECK(store.put_tree(t / "two").value() == *a);

  write_file(t / "two/sub/deeper/c.csv", "x,y\n1,3\n");
  CHECK(store.put_tree(t / "two").value() != *a);
  write_file(t / "two/sub/deeper/c.csv", "x,y\n1,2\n");
  CHECK(store.put_tree(t / "two").value() == *a);

  chmod((t / "two/a.txt").c_str(), 0755);
  CHECK(store.put_tree(t / "two").value() != *a);
  chmod((t / "two/a.txt").c_str(), 0644);
  fs::remove(t / "two/empty");
  CHECK(store.put_tree(t / "two").value() != *a);
}

TEST_CASE("artifact_store: symlinks inside a folder are kept, those leading outside are refused") {
  TempDir t;
  auto store = open_store(t / "home");
  make_tree(t / "out");
  fs::create_symlink("../a.txt", t / "out/sub/rel-link");
  fs::create_symlink(t / "out/sub/deeper", t / "out/abs-link");  // absolute, but inside: stored relative
  auto d = store.put_tree(t / "out");
  REQUIRE(d.ok());
  auto entries = store.read_tree(*d);
  REQUIRE(entries.ok());
  std::vector<std::pair<std::string, std::string>> links;
  for (const TreeEntry& e : *entries) {
    if (e.type == TreeEntry::Type::Symlink) links.emplace_back(e.path, e.target);
  }
  CHECK(links == std::vector<std::pair<std::string, std::string>>{{"abs-link", "sub/deeper"}, {"sub/rel-link", "../a.txt"}});

  write_file(t / "secret", "outside");
  fs::create_symlink("../../secret", t / "out/sub/escape");
  CHECK(store.put_tree(t / "out").error() ==
        "folder output '" + t / "out" + "': 'sub/escape' is a symlink to '../../secret', which leads outside the folder");
  fs::remove(t / "out/sub/escape");
  fs::create_symlink("nowhere", t / "out/dangling");
  CHECK(store.put_tree(t / "out").error() == "folder output '" + t / "out" +
                                                 "': 'dangling' is a symlink to 'nowhere', which cannot be resolved "
                                                 "(No such file or directory)");
  fs::remove(t / "out/dangling");
  REQUIRE(mkfifo((t / "out/pipe").c_str(), 0644) == 0);
  CHECK(store.put_tree(t / "out").error() ==
        "folder output '" + t / "out" + "': 'pipe' is a FIFO; only files, folders and symlinks can be stored");
  CHECK(store.put_tree(t / "out/a.txt").error() == "'" + t / "out/a.txt" + "' is not a folder");
}

TEST_CASE("artifact_store: materialize hard-links a file, read-only") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "data.csv", "a,b\n");
  auto d = store.put_file(t / "data.csv");
  REQUIRE(d.ok());
  fs::create_directories(t / "work");
  auto r = store.materialize(*d, t / "work/input.csv");
  REQUIRE(r.ok());
  CHECK(stat_of(t / "work/input.csv").st_ino == stat_of(store.object_path(*d)).st_ino);
  CHECK(mode_of(t / "work/input.csv") == 0444);
  CHECK(read_file(t / "work/input.csv") == "a,b\n");
  CHECK(store.stats().files_linked == 1);
  CHECK(fs::is_empty(t / "home/cas/tmp"));

  CHECK(store.materialize(*d, t / "work/input.csv").error() == "'" + t / "work/input.csv" + "' already exists");
  write_file(t / "other", "other");
  auto other = store.put_file(t / "other");
  REQUIRE(other.ok());
  REQUIRE(store.materialize(*other, t / "work/input.csv", OnExisting::Replace).ok());
  CHECK(read_file(t / "work/input.csv") == "other");
  CHECK(read_file(store.object_path(*d)) == "a,b\n");  // replacing a link never touches the object

  Digest absent{Kind::File, hex_of("absent")};
  CHECK(store.materialize(absent, t / "work/x").error() == absent.str() + " is not in the store");
  CHECK_FALSE(fs::exists(t / "work/x"));
}

TEST_CASE("artifact_store: materialize recreates a folder with linked files and read-only folders") {
  TempDir t;
  auto store = open_store(t / "home");
  make_tree(t / "out");
  fs::create_symlink("../a.txt", t / "out/sub/link");
  auto d = store.put_tree(t / "out");
  REQUIRE(d.ok());
  fs::create_directories(t / "work");
  REQUIRE(store.materialize(*d, t / "work/in").ok());
  std::string in = t / "work/in";
  CHECK(read_file(in + "/a.txt") == "alpha\n");
  CHECK(stat_of(in + "/a.txt").st_ino == stat_of(store.object_path(Digest{Kind::File, hex_of("alpha\n")})).st_ino);
  CHECK(mode_of(in + "/a.txt") == 0444);
  CHECK(read_file(in + "/sub/deeper/c.csv") == "x,y\n1,2\n");
  CHECK(mode_of(in + "/run.sh") == 0555);  // executables are copies: the shared object stays 0444
  CHECK(stat_of(in + "/run.sh").st_ino != stat_of(store.object_path(Digest{Kind::File, hex_of("#!/bin/sh\necho hi\n")})).st_ino);
  CHECK(fs::is_directory(in + "/empty"));
  CHECK(fs::read_symlink(in + "/sub/link") == "../a.txt");
  CHECK(read_file(in + "/sub/link") == "alpha\n");
  for (const std::string& dir : {in, in + "/sub", in + "/sub/deeper", in + "/empty"}) CHECK(mode_of(dir) == 0555);
  CHECK(store.put_tree(in).value() == *d);  // the copy hashes back to the same tree

  CHECK(store.materialize(*d, in).error() == "'" + in + "' already exists");
  write_file(t / "out2/only.txt", "only\n");
  auto d2 = store.put_tree(t / "out2");
  REQUIRE(d2.ok());
  REQUIRE(store.materialize(*d2, in, OnExisting::Replace).ok());
  CHECK(read_file(in + "/only.txt") == "only\n");
  CHECK_FALSE(fs::exists(in + "/a.txt"));
  CHECK(mode_of(in) == 0555);
  CHECK(fs::is_empty(t / "home/cas/tmp"));

  // A file over a folder, and a folder over a file.
  write_file(t / "f", "f");
  auto f = store.put_file(t / "f");
  REQUIRE(store.materialize(*f, in, OnExisting::Replace).ok());
  CHECK(read_file(in) == "f");
  REQUIRE(store.materialize(*d, in, OnExisting::Replace).ok());
  CHECK(read_file(in + "/a.txt") == "alpha\n");

  // A file digest read as a tree is refused, not guessed.
  Digest not_tree{Kind::Tree, f->hex};
  CHECK(store.materialize(not_tree, t / "work/nt").error() ==
        not_tree.str() + " is not a valid tree: not a tree listing: the first line is not 'sluice-tree 1'");
}

TEST_CASE("artifact_store: materialize refuses unsafe destinations") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "f", "f");
  auto d = store.put_file(t / "f");
  REQUIRE(d.ok());
  CHECK(store.materialize(*d, "").error() == "the path is empty");
  CHECK(store.materialize(*d, std::string("a\0b", 3)).error() == "the path contains a NUL byte");
  CHECK(store.materialize(*d, t / "x/../y").error() == "'" + t / "x/../y" + "' contains a '..' component");
  CHECK(store.materialize(*d, t / "home/cas/sha256/mine").error() == "'" + t / "home/cas/sha256/mine" +
                                                                          "' is inside the artifact store");
  CHECK(store.materialize(*d, t / "home", OnExisting::Replace).error() == "'" + t / "home" +
                                                                              "' contains the artifact store");
  CHECK(store.materialize(*d, t / "no/such/dir/x").error() ==
        "cannot resolve the folder of '" + t / "no/such/dir/x" + "': No such file or directory");
  CHECK(fs::exists(store.object_path(*d)));
}

TEST_CASE("artifact_store: relative paths and symlinks may not leave their root") {
  CHECK(sluice::dsl::unsafe_relative_path("model.bin") == "");
  CHECK(sluice::dsl::unsafe_relative_path("a/./b") == "");
  CHECK(sluice::dsl::unsafe_relative_path("") == "the path is empty");
  CHECK(sluice::dsl::unsafe_relative_path(std::string("a\0b", 3)) == "the path contains a NUL byte");
  CHECK(sluice::dsl::unsafe_relative_path("/etc/passwd") == "'/etc/passwd' is absolute where a relative path is expected");
  CHECK(sluice::dsl::unsafe_relative_path("a/../../b") == "'a/../../b' contains a '..' component");
  CHECK(sluice::dsl::unsafe_relative_path("..") == "'..' contains a '..' component");

  TempDir t;
  auto store = open_store(t / "home");
  std::string root = t / "work";
  write_file(root + "/model.bin", "model");
  write_file(t / "outside/secret", "secret");
  fs::create_symlink("model.bin", root + "/alias");
  fs::create_symlink(t / "outside/secret", root + "/leak");
  fs::create_symlink(t / "outside", root + "/escape");

  auto ok = store.put_file_at(root, "alias");
  REQUIRE(ok.ok());
  CHECK(ok->hex == hex_of("model"));
  CHECK(store.put_file_at(root, "../outside/secret").error() == "'../outside/secret' contains a '..' component");
  CHECK(store.put_file_at(root, t / "outside/secret").error() ==
        "'" + t / "outside/secret" + "' is absolute where a relative path is expected");
  CHECK(store.put_file_at(root, std::string("model\0.bin", 10)).error() == "the path contains a NUL byte");
  CHECK(store.put_file_at(root, "leak").error() ==
        "'leak' leads outside '" + root + "' (it resolves to '" + t / "outside/secret" + "')");
  CHECK(store.put_file_at(root, "escape/secret").error() ==
        "'escape/secret' leads outside '" + root + "' (it resolves to '" + t / "outside/secret" + "')");
  CHECK(store.put_tree_at(root, "escape").error() ==
        "'escape' leads outside '" + root + "' (it resolves to '" + t / "outside" + "')");
  CHECK(store.put_tree_at(root, "..").error() == "'..' contains a '..' component");
  CHECK_FALSE(store.exists(Digest{Kind::File, hex_of("secret")}));

  // A batch (the run recorder's way in) follows the same rules: a symlink
  // that stays inside is stored, one that leads out is refused, by name.
  {
    ArtifactStore::Batch batch(store);
    auto linked = batch.put_file_at(root, "alias");
    REQUIRE(linked.ok());
    CHECK(linked->digest.hex == hex_of("model"));
    CHECK(batch.put_file_at(root, "leak").error() ==
          "'leak' leads outside '" + root + "' (it resolves to '" + t / "outside/secret" + "')");
    CHECK(batch.put_file_at(root, "escape/secret").error() ==
          "'escape/secret' leads outside '" + root + "' (it resolves to '" + t / "outside/secret" + "')");
    CHECK(batch.put_file_at(root, "../outside/secret").error() == "'../outside/secret' contains a '..' component");
    CHECK(batch.put_file_at(root, t / "outside/secret").error() ==
          "'" + t / "outside/secret" + "' is absolute where a relative path is expected");
    REQUIRE(batch.commit().ok());
    CHECK_FALSE(store.exists(Digest{Kind::File, hex_of("secret")}));
  }

  CHECK(store.materialize_at(*ok, root, "escape/copy").error() ==
        "'escape/copy' leads outside '" + root + "' (its folder resolves to '" + t / "outside" + "')");
  CHECK(store.materialize_at(*ok, root, "../copy").error() == "'../copy' contains a '..' component");
  CHECK(store.materialize_at(*ok, root, "/tmp/copy").error() == "'/tmp/copy' is absolute where a relative path is expected");
  CHECK(store.materialize_at(*ok, root, "leak", OnExisting::Replace).ok());  // replaces the link itself
  CHECK(read_file(t / "outside/secret") == "secret");
  CHECK(count_files(t / "outside") == 1);
  CHECK(read_file(root + "/leak") == "model");
  fs::create_directories(root + "/inputs");
  REQUIRE(store.materialize_at(*ok, root, "inputs/model.bin").ok());
  CHECK(read_file(root + "/inputs/model.bin") == "model");
}

TEST_CASE("artifact_store: verify reports an object whose bytes no longer match its name") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "a", "good bytes");
  write_file(t / "b", "other bytes");
  auto a = store.put_file(t / "a");
  auto b = store.put_file(t / "b");
  REQUIRE((a.ok() && b.ok()));
  CHECK(store.verify().value().empty());

  std::string obj = store.object_path(*b);
  REQUIRE(chmod(obj.c_str(), 0644) == 0);
  {
    std::fstream f(obj, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
  }
  REQUIRE(chmod(obj.c_str(), 0444) == 0);
  write_file(t / "home/cas/sha256/zz/not-a-digest", "junk");
  auto issues = store.verify();
  REQUIRE(issues.ok());
  REQUIRE(issues->size() == 2);
  CHECK((*issues)[0].path == obj);
  CHECK((*issues)[0].expected == b->hex);
  CHECK((*issues)[0].actual == hex_of("othXr bytes"));
  CHECK((*issues)[0].error.empty());
  CHECK((*issues)[1].path == t / "home/cas/sha256/zz/not-a-digest");
  CHECK((*issues)[1].error == "the name is not a digest");
}

TEST_CASE("artifact_store: the stat cache skips re-hashing an unchanged file") {
  TempDir t;
  write_file(t / "big", std::string(200'000, 'b'));
  Digest d;
  {
    auto store = open_store(t / "home", caching_everything());
    d = store.put_file(t / "big").value();
    CHECK(store.stats().files_hashed == 1);
    CHECK(store.put_file(t / "big").value() == d);
    CHECK(store.stats().files_hashed == 1);
    CHECK(store.stats().stat_cache_hits == 1);
  }
  std::string cache = read_file(t / "home/cas/stat-cache");
  CHECK(cache.rfind("sluice-stat-cache 1\n", 0) == 0);
  {
    // Another process (a fresh store) reads the saved cache.
    auto store = open_store(t / "home", caching_everything());
    CHECK(store.put_file(t / "big").value() == d);
    CHECK(store.stats().files_hashed == 0);
    CHECK(store.stats().stat_cache_hits == 1);

    // A touched file (new mtime, same bytes) is hashed again.
    struct timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 123}};
    REQUIRE(utimensat(AT_FDCWD, (t / "big").c_str(), times, 0) == 0);
    CHECK(store.put_file(t / "big").value() == d);
    CHECK(store.stats().files_hashed == 1);

    // New bytes of the same size with the old mtime put back: the ctime still
    // tells, once the clock has moved past the last change's tick (the racy
    // window, turned off in these options, covers that case in real use).
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    write_file(t / "big", std::string(200'000, 'c'));
    REQUIRE(utimensat(AT_FDCWD, (t / "big").c_str(), times, 0) == 0);
    auto changed = store.put_file(t / "big");
    CHECK(changed->hex == hex_of(std::string(200'000, 'c')));
    CHECK(store.stats().files_hashed == 2);
  }
}

TEST_CASE("artifact_store: the stat cache ignores small and just-written files") {
  TempDir t;
  write_file(t / "small", "tiny");
  write_file(t / "fresh", std::string(200'000, 'f'));
  StoreOptions racy = caching_everything();
  racy.racy_window = std::chrono::hours(1);  // everything counts as just written
  auto store = open_store(t / "home", racy);
  REQUIRE(store.put_file(t / "fresh").ok());
  REQUIRE(store.put_file(t / "fresh").ok());
  CHECK(store.stats().files_hashed == 2);
  CHECK(store.stats().stat_cache_hits == 0);

  auto defaults = open_store(t / "home2");  // 64 KiB minimum
  REQUIRE(defaults.put_file(t / "small").ok());
  REQUIRE(defaults.put_file(t / "small").ok());
  CHECK(defaults.stats().files_hashed == 2);
}

TEST_CASE("artifact_store: a damaged stat cache is ignored, not trusted") {
  TempDir t;
  write_file(t / "big", std::string(100'000, 'q'));
  {
    auto store = open_store(t / "home", caching_everything());
    REQUIRE(store.put_file(t / "big").ok());
  }
  std::string cache = read_file(t / "home/cas/stat-cache");
  std::string hex = hex_of(std::string(100'000, 'q'));
  size_t at = cache.find(hex);
  REQUIRE(at != std::string::npos);
  cache[at] = cache[at] == '0' ? '1' : '0';  // a wrong digest for the file
  write_file(t / "home/cas/stat-cache", cache);
  auto store = open_store(t / "home", caching_everything());
  auto d = store.put_file(t / "big");
  CHECK(d->hex == hex);
  CHECK(store.stats().files_hashed == 1);
  CHECK(store.stats().stat_cache_hits == 0);
}

TEST_CASE("artifact_store: folders are stored with their files through the stat cache") {
  TempDir t;
  make_tree(t / "out");
  auto store = open_store(t / "home", caching_everything());
  auto a = store.put_tree(t / "out");
  REQUIRE(a.ok());
  CHECK(store.stats().files_hashed == 4);
  auto b = store.put_tree(t / "out");
  CHECK(*b == *a);
  CHECK(store.stats().files_hashed == 4);
  CHECK(store.stats().stat_cache_hits == 4);
}

TEST_CASE("artifact_store: a cached digest whose object is gone is hashed again") {
  TempDir t;
  write_file(t / "big", std::string(100'000, 'g'));
  auto store = open_store(t / "home", caching_everything());
  auto d = store.put_file(t / "big");
  REQUIRE(d.ok());
  REQUIRE(fs::remove(store.object_path(*d)));
  auto again = store.put_file(t / "big");
  REQUIRE(again.ok());
  CHECK(*again == *d);
  CHECK(store.stats().files_hashed == 2);
  CHECK(store.stats().stat_cache_hits == 0);
  CHECK(read_file(store.object_path(*d)) == std::string(100'000, 'g'));
}

TEST_CASE("artifact_store: a batch makes its objects present only at commit, equal content written once") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "a.txt", "alpha\n");
  write_file(t / "b.txt", "alpha\n");
  write_file(t / "c.txt", "gamma\n");
  write_file(t / "empty.log", "");
  ArtifactStore::Batch batch(store);
  auto a = batch.put_file(t / "a.txt");
  auto b = batch.put_file(t / "b.txt");
  auto c = batch.put_file(t / "c.txt");
  auto e = batch.put_file(t / "empty.log");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  REQUIRE(e.ok());
  CHECK(a->digest == Digest{Kind::File, hex_of("alpha\n")});
  CHECK(a->size == 6);
  CHECK(b->digest == a->digest);
  CHECK(c->digest == Digest{Kind::File, hex_of("gamma\n")});
  CHECK(e->digest == Digest{Kind::File, hex_of("")});
  CHECK(e->size == 0);
  // Staged, not stored: three temp files (alpha once), no object yet.
  CHECK(batch.pending() == 3);
  CHECK(count_files(t / "home/cas/tmp") == 3);
  CHECK(count_files(t / "home/cas/sha256") == 0);
  CHECK_FALSE(store.exists(a->digest));

  REQUIRE(batch.commit().ok());
  CHECK(batch.pending() == 0);
  CHECK(fs::is_empty(t / "home/cas/tmp"));
  for (const auto& [d, content] : {std::pair{a->digest, std::string("alpha\n")}, std::pair{c->digest, std::string("gamma\n")},
                                   std::pair{e->digest, std::string()}}) {
    CHECK(store.exists(d));
    CHECK(read_file(store.object_path(d)) == content);
    CHECK(mode_of(store.object_path(d)) == 0444);
  }
  CHECK(store.stats().objects_written == 3);
  // The empty file was never read: only a, b and c were hashed.
  CHECK(store.stats().files_hashed == 3);

  // Present objects cost no write in a later batch, and an empty commit is fine.
  auto again = batch.put_file(t / "empty.log");
  REQUIRE(again.ok());
  CHECK(again->digest == e->digest);
  REQUIRE(batch.put_file(t / "a.txt").ok());
  CHECK(batch.pending() == 0);
  CHECK(fs::is_empty(t / "home/cas/tmp"));
  REQUIRE(batch.commit().ok());
  CHECK(store.stats().objects_written == 3);
}

TEST_CASE("artifact_store: a batch dropped before commit leaves no temp file and no object") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "a.txt", "alpha\n");
  write_file(t / "empty.log", "");
  Digest d;
  {
    ArtifactStore::Batch batch(store);
    d = batch.put_file(t / "a.txt").value().digest;
    REQUIRE(batch.put_file(t / "empty.log").ok());
    CHECK(count_files(t / "home/cas/tmp") == 2);
  }
  CHECK(fs::is_empty(t / "home/cas/tmp"));
  CHECK(count_files(t / "home/cas/sha256") == 0);
  CHECK_FALSE(store.exists(d));
}

TEST_CASE("artifact_store: a batch of more files than it keeps open stores them all") {
  TempDir t;
  auto store = open_store(t / "home");
  ArtifactStore::Batch batch(store);
  std::vector<Digest> digests;
  for (int i = 0; i < 600; ++i) {
    std::string path = t / ("src/" + std::to_string(i) + ".txt");
    write_file(path, std::to_string(i) + "\n");
    auto s = batch.put_file(path);
    REQUIRE(s.ok());
    digests.push_back(s->digest);
  }
  CHECK(batch.pending() == 600);
  REQUIRE(batch.commit().ok());
  CHECK(fs::is_empty(t / "home/cas/tmp"));
  CHECK(count_files(t / "home/cas/sha256") == 600);
  for (int i = 0; i < 600; ++i) CHECK(read_file(store.object_path(digests[static_cast<size_t>(i)])) == std::to_string(i) + "\n");
}

TEST_CASE("artifact_store: a batch refuses what put_file refuses, with the same messages") {
  TempDir t;
  auto store = open_store(t / "home");
  ArtifactStore::Batch batch(store);
  fs::create_directories(t / "dir");
  REQUIRE(mkfifo((t / "pipe").c_str(), 0644) == 0);
  for (const std::string& path : {t / "dir", t / "pipe", t / "missing", std::string()}) {
    INFO(path);
    auto plain = store.put_file(path);
    auto batched = batch.put_file(path);
    REQUIRE_FALSE(plain.ok());
    CHECK(batched.error() == plain.error());
  }
  CHECK(batch.put_file(t / "missing").error() == "cannot open '" + t / "missing" + "': No such file or directory");
  CHECK(batch.pending() == 0);
}

// ---- small files kept by the caller (SmallFiles::KeptByCaller)

TEST_CASE("artifact_store: a batch hands small files' bytes to its caller and writes their objects all the same") {
  TempDir t;
  auto store = open_store(t / "home");
  write_file(t / "small.txt", "small\n");
  write_file(t / "edge.bin", std::string(ArtifactStore::Batch::kKeptMax, 'e'));
  write_file(t / "big.bin", std::string(ArtifactStore::Batch::kKeptMax + 1, 'b'));
  write_file(t / "empty.log", "");
  ArtifactStore::Batch batch(store, SmallFiles::KeptByCaller);
  auto small = batch.put_file(t / "small.txt");
  auto edge = batch.put_file(t / "edge.bin");
  auto big = batch.put_file(t / "big.bin");
  auto empty = batch.put_file(t / "empty.log");
  REQUIRE(small.ok());
  REQUIRE(edge.ok());
  REQUIRE(big.ok());
  REQUIRE(empty.ok());
  CHECK(small->bytes == std::optional<std::string>("small\n"));
  CHECK(edge->bytes == std::optional<std::string>(std::string(ArtifactStore::Batch::kKeptMax, 'e')));
  CHECK_FALSE(big->bytes.has_value());  // synced like any file
  CHECK(empty->bytes == std::optional<std::string>(""));
  // Where the file system has O_TMPFILE, the kept files' objects are in
  // place at once (linked whole, never synced) and only the big one waits
  // for commit; elsewhere all four are temp files renamed at commit.
  const int probe = ::open((t / "home/cas/tmp").c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  const bool tmpfile = probe >= 0;
  if (tmpfile) ::close(probe);
  CHECK(batch.pending() == (tmpfile ? 1U : 4U));
  CHECK(count_files(t / "home/cas/tmp") == (tmpfile ? 1U : 4U));
  if (tmpfile) CHECK(read_file(store.object_path(small->digest)) == "small\n");
  CHECK_FALSE(store.exists(big->digest));
  REQUIRE(batch.commit().ok());
  CHECK(fs::is_empty(t / "home/cas/tmp"));
  for (const auto& [d, path] : {std::pair{small->digest, t / "small.txt"}, std::pair{edge->digest, t / "edge.bin"},
                                std::pair{big->digest, t / "big.bin"}, std::pair{empty->digest, t / "empty.log"}}) {
    CHECK(store.exists(d));
    CHECK(read_file(store.object_path(d)) == read_file(path));
    CHECK(mode_of(store.object_path(d)) == 0444);
  }

  // Present with these bytes' size: no write, no bytes. Emptied (what a
  // crash can leave of a file never synced): written again, replacing it.
  auto again = batch.put_file(t / "small.txt");
  REQUIRE(again.ok());
  CHECK_FALSE(again->bytes.has_value());
  CHECK(batch.pending() == 0);
  const std::string object = store.object_path(small->digest);
  chmod(object.c_str(), 0644);
  fs::resize_file(object, 0);
  auto rewritten = batch.put_file(t / "small.txt");
  REQUIRE(rewritten.ok());
  CHECK(rewritten->bytes == std::optional<std::string>("small\n"));
  REQUIRE(batch.commit().ok());
  CHECK(read_file(object) == "small\n");
  CHECK(mode_of(object) == 0444);
}

TEST_CASE("artifact_store: a small object a crash lost or emptied is restored from the bytes the database keeps") {
  TempDir t;
  const std::string home = t / "home";
  const std::string kept = "kept\n", wrong = "other\n";
  const Digest d{Kind::File, hex_of(kept)}, w{Kind::File, hex_of("something else\n")}, big{Kind::File, hex_of("big\n")};
  {
    fs::create_directories(home);
    auto db = open_sqlite_store(home + "/sluice.db");
    // Recorded first without bytes (an object synced on its own), then with.
    db->apply({PutArtifact{d.str(), ArtifactKind::File, 5, 1}, PutArtifact{big.str(), ArtifactKind::File, 4, 1}});
    db->apply({PutArtifact{d.str(), ArtifactKind::File, 5, 2, kept},
               PutArtifact{w.str(), ArtifactKind::File, 6, 2, wrong}});  // bytes that are not its own
  }
  auto store = open_store(home);
  const std::string object = store.object_path(d);

  CHECK_FALSE(fs::exists(object));
  CHECK(store.exists(d));  // restored
  CHECK(read_file(object) == kept);
  CHECK(mode_of(object) == 0444);
  CHECK(store.stats().objects_restored == 1);

  chmod(object.c_str(), 0644);
  fs::resize_file(object, 0);
  auto bytes = store.read(d);
  REQUIRE(bytes.ok());
  CHECK(*bytes == kept);
  CHECK(mode_of(object) == 0444);

  fs::remove(object);
  REQUIRE(store.materialize(d, t / "out.txt").ok());
  CHECK(read_file(t / "out.txt") == kept);
  fs::remove(object);
  auto size = store.size(d);
  REQUIRE(size.ok());
  CHECK(*size == 5);
  CHECK(store.stats().objects_restored == 4);

  // Bytes that do not hash to the digest, or none kept: not in the store.
  CHECK_FALSE(store.exists(w));
  CHECK(store.read(w).error() == w.str() + " is not in the store");
  CHECK_FALSE(store.exists(big));
  CHECK_FALSE(fs::exists(store.object_path(w)));
  CHECK(store.stats().objects_restored == 4);

  // Without a database nothing is restored, and none is created.
  TempDir other;
  auto bare = open_store(other / "home");
  CHECK_FALSE(bare.exists(d));
  CHECK_FALSE(fs::exists(other / "home/sluice.db"));
}
