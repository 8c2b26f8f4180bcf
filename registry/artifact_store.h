#pragma once
// The content-addressed artifact store: files and folders kept by SHA-256
// under <home>/cas, written atomically, deduplicated, read-only, handed out
// by hard link. See docs/store.md ("Artifacts") for the layout and protocols.
//
// Errors are values: every operation that can fail returns a Result holding
// either its value or a one-line message (no trailing period). Nothing here
// exits; exceptions escape only for out-of-memory.
// Every member function is safe to call from several threads at once, and
// several processes may share one store.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::registry {

struct Error {
  std::string message;
};

// A value or an error message. Construct from a T or from Error{"..."}.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error e) : error_(e.message.empty() ? "unknown error" : std::move(e.message)) {}
  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_; }  // empty when ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  std::string error_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : error_(e.message.empty() ? "unknown error" : std::move(e.message)) {}
  bool ok() const { return error_.empty(); }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// What a digest names: a file's bytes, or a folder (a tree object: the
// canonical listing of the folder, itself stored as a file).
enum class Kind { File, Tree };

// Written "sha256:<64 hex>" for a file and "sha256:<64 hex>.tree" for a
// folder; both name the object cas/sha256/<hex[0:2]>/<hex[2:]>.
struct Digest {
  Kind kind = Kind::File;
  std::string hex;  // 64 lowercase hex digits

  std::string str() const;
  // Accepts the written form (hex digits in either case).
  static Result<Digest> parse(std::string_view text);
  friend bool operator==(const Digest&, const Digest&) = default;
};

// One line of a tree object. Paths are relative to the folder, '/'-separated.
struct TreeEntry {
  enum class Type { File, Dir, Symlink };
  Type type = Type::File;
  bool executable = false;  // files only
  std::string hex;          // files: the content's digest
  std::string target;       // symlinks: relative target, staying inside the folder
  std::string path;
  friend bool operator==(const TreeEntry&, const TreeEntry&) = default;
};

// The canonical listing: "sluice-tree 1", then one line per entry sorted by
// path bytes: "<file|dir|link> <x|-> <hex|-|target> <path>", with bytes
// <= 0x20, '%' and 0x7f in paths and targets written as %XX.
std::string format_tree(const std::vector<TreeEntry>& sorted_entries);
// Parses and checks a listing: canonical order, safe relative paths, every
// entry's folder listed before it, symlink targets that stay inside.
Result<std::vector<TreeEntry>> parse_tree(std::string_view listing);

enum class OnExisting { Refuse, Replace };

struct StoreOptions {
  // Threads hashing files of one folder and objects in verify(); 0 = one per CPU.
  unsigned threads = 0;
  // Files smaller than this are hashed every time rather than cached.
  uint64_t stat_cache_min_bytes = 64 * 1024;
  // A file whose ctime is this close to the moment hashing began is not
  // cached: a write in the same timestamp tick would go unseen ("racy git").
  // Negative = max(20 ms, 2 x the coarse clock's resolution).
  std::chrono::nanoseconds racy_window{-1};
  // materialize() copies files instead of hard-linking them. Mode bits do not
  // stop root, so a process running as root that writes to a hard-linked
  // input would change the object itself; a copy keeps the store intact.
  bool materialize_copies = false;
};

// Counters since open(); for progress, metrics and tests.
struct StoreStats {
  uint64_t files_hashed = 0;     // file contents read and hashed
  uint64_t bytes_hashed = 0;
  uint64_t stat_cache_hits = 0;  // files whose digest came from the stat cache
  uint64_t objects_written = 0;  // new objects renamed into place
  uint64_t objects_existing = 0; // puts that found their object present
  uint64_t files_linked = 0;     // materialized by hard link
  uint64_t files_copied = 0;     // materialized by copy
  uint64_t objects_restored = 0; // kept small files a crash lost, rewritten from the metadata store
};

struct ObjectInfo {
  std::string hex;
  uint64_t size = 0;
};

// An object whose bytes no longer match its name, or that cannot be read.
struct VerifyIssue {
  std::string path;      // the object's file
  std::string expected;  // from its name
  std::string actual;    // digest of its bytes; empty when unreadable
  std::string error;     // why it could not be checked; empty otherwise
};

class ArtifactStore {
 public:
  // Opens (creating when missing) <home>/cas with sha256/ and tmp/ inside.
  static Result<ArtifactStore> open(const std::string& home, StoreOptions options = {});
  ArtifactStore(ArtifactStore&&) noexcept;
  ArtifactStore& operator=(ArtifactStore&&) noexcept;
  ~ArtifactStore();  // saves the stat cache (best effort)

  const std::string& root() const;  // absolute <home>/cas

  // Stores a regular file (a symlink is followed). The bytes are copied into
  // cas/tmp, fsynced and renamed into place; the source is left untouched.
  Result<Digest> put_file(const std::string& path);
  // As put_file for `root`/`relative`: `relative` must be a safe relative
  // path and must not resolve (through symlinks) outside `root`.
  Result<Digest> put_file_at(const std::string& root, const std::string& relative);
  Result<Digest> put_bytes(std::string_view bytes);

  // Stores every file of a folder, then its listing; returns the listing's
  // digest as Kind::Tree. Symlinks must resolve inside the folder; FIFOs,
  // sockets and devices are refused.
  Result<Digest> put_tree(const std::string& dir);
  Result<Digest> put_tree_at(const std::string& root, const std::string& relative);

  // Makes `dest` hold the artifact, read-only: files are hard links to the
  // object (copies across file systems, and for executables, which get
  // 0555); folders are recreated with 0555 folders. `dest` appears
  // atomically when cas/ and dest share a file system. Its parent must
  // exist; `dest` must not lie inside the store.
  Result<void> materialize(const Digest& digest, const std::string& dest,
                           OnExisting on_existing = OnExisting::Refuse);
  // As materialize for `root`/`relative`, whose folder must not resolve
  // (through symlinks) outside `root`.
  Result<void> materialize_at(const Digest& digest, const std::string& root, const std::string& relative,
                              OnExisting on_existing = OnExisting::Refuse);

  // A file's object is present; for a tree, its listing and every file in it.
  bool exists(const Digest& digest) const;
  std::string object_path(const Digest& digest) const;  // whether or not present
  // Bytes of a file; for a tree, the sum of its files' sizes.
  Result<uint64_t> size(const Digest& digest) const;
  // The object's bytes (a tree's listing for Kind::Tree).
  Result<std::string> read(const Digest& digest) const;
  Result<std::vector<TreeEntry>> read_tree(const Digest& digest) const;

  // Re-hashes every object; lists those that do not match their names.
  Result<std::vector<VerifyIssue>> verify() const;
  // Every object, sorted by digest.
  Result<std::vector<ObjectInfo>> list() const;

  // Writes cas/stat-cache now (merged with entries other processes saved).
  // put_file, put_tree and Batch::commit call this themselves.
  Result<void> save_stat_cache();
  StoreStats stats() const;

  class Batch;
  struct Impl;

 private:
  explicit ArtifactStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A file stored by a Batch: its digest and size in bytes, and with
// SmallFiles::KeptByCaller, the bytes of a small file the batch wrote
// without a sync (see Batch).
struct Stored {
  Digest digest;
  uint64_t size = 0;
  std::optional<std::string> bytes{};
};

// How a Batch makes small files durable. Sync: like every other file.
// KeptByCaller: a file of at most Batch::kKeptMax bytes whose object is
// missing is written without a sync of its own, at once (an O_TMPFILE file
// linked under its name when whole; a temp file renamed at commit where the
// file system cannot), so it may be present before commit(); Stored::bytes
// hands its bytes to the caller, which must make them durable in the
// metadata store (PutArtifact::data) in the transaction that records the
// digest. A crash
// can then lose or empty the object's file; reads (exists, size, read,
// materialize) restore such a file from those bytes. A present object of
// another size is replaced.
enum class SmallFiles { Sync, KeptByCaller };

// Puts made durable together, for a caller that stores many small files at
// once (the run recorder: the logs and outputs of one transaction). put_file
// hashes the file and, when its object is missing, copies it into a temp
// file in cas/tmp, as ArtifactStore::put_file does, but syncs nothing.
// commit() then makes every object of the batch durable in one sweep: fsync
// of each temp file, renames into place (never replacing), one fsync per
// touched fan-out folder (and of sha256/ when a fan-out folder was created).
// Small files may instead be left to the caller (SmallFiles above).
//
// A digest returned by put_file names a present, crash-safe object only once
// commit() has returned ok: record it (in the metadata store) after that.
// An empty file costs no read and, once the empty object exists, no write.
// Equal content put twice in one batch is written once. A batch is used by
// one thread; batches and plain puts in other threads and processes may run
// at once. Destroying a batch without commit() removes its temp files.
class ArtifactStore::Batch {
 public:
  static constexpr uint64_t kKeptMax = 4096;  // SmallFiles::KeptByCaller: files up to this size
  explicit Batch(ArtifactStore& store, SmallFiles small = SmallFiles::Sync);
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  ~Batch();

  // As ArtifactStore::put_file (a symlink is followed; only regular files).
  Result<Stored> put_file(const std::string& path);
  // As ArtifactStore::put_file_at: `relative` must be a safe relative path
  // that does not resolve (through symlinks) outside `root`.
  Result<Stored> put_file_at(const std::string& root, const std::string& relative);
  // Makes the batch's objects durable and present; the batch is then empty
  // and can be reused. On failure no temp file is left behind and none of
  // the batch's new objects may be assumed present.
  Result<void> commit();
  // New objects waiting for commit().
  size_t pending() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sluice::registry
