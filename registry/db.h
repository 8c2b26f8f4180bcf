#pragma once
// A small RAII layer over the SQLite C API for the metadata store: a
// connection (Db), prepared statements cached per connection (Stmt), and
// write transactions (Tx). Every failure throws StoreError carrying SQLite's
// message and the SQL. A Db and its Stmts are used by one thread at a time.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "registry/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::registry {

class Db;

// A prepared statement borrowed from its Db's cache; returned (reset, bindings
// cleared) when destroyed. Parameters are 1-based, columns 0-based. The Db
// must outlive it.
class Stmt {
 public:
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt();

  // Binds integers, floating point, text (anything convertible to
  // std::string_view), nullptr (NULL) or a std::optional of those (nullopt = NULL).
  template <class T>
  Stmt& bind(int index, const T& value) {
    if constexpr (std::is_same_v<T, std::nullptr_t>) {
      bind_null(index);
    } else if constexpr (std::is_same_v<T, bool>) {
      bind_int64(index, value ? 1 : 0);
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      bind_int64(index, static_cast<int64_t>(value));
    } else if constexpr (std::is_floating_point_v<T>) {
      bind_double(index, static_cast<double>(value));
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      bind_text(index, std::string_view(value));
    } else {
      if (value) bind(index, *value); else bind_null(index);
    }
    return *this;
  }
  template <class T>
  Stmt& bind(const char* name, const T& value) { return bind(parameter_index(name), value); }
  int parameter_index(const char* name) const;  // ":name", "?1"... throws if unknown
  // Binds bytes as a BLOB (any bytes, NULs included).
  Stmt& bind_blob(int index, std::string_view bytes);

  // Advances: true while a row is available.
  bool step();
  // Steps to the end (for statements that return no rows, or whose rows are ignored).
  void run();

  int column_count() const;
  bool is_null(int col) const;
  int64_t int64(int col) const;                    // NULL reads as 0
  double real(int col) const;                      // NULL reads as NaN
  std::string text(int col) const;                 // NULL reads as ""
  std::string blob(int col) const;                 // a BLOB's bytes; NULL reads as ""
  std::optional<int64_t> opt_int64(int col) const;

  std::string sql() const;  // the statement's text

 private:
  friend class Db;
  struct Slot;
  Stmt(Db* db, Slot* slot, sqlite3_stmt* stmt);
  void bind_null(int index);
  void bind_int64(int index, int64_t v);
  void bind_double(int index, double v);
  void bind_text(int index, std::string_view v);
  [[noreturn]] void fail(int rc) const;

  Db* db_;
  Slot* slot_;  // the cache entry this statement came from; null if uncached
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  struct Options {
    int busy_timeout_ms = 10'000;  // how long a writer waits for another one
  };
  // Opens (creating if missing) the database at `path` in WAL mode with
  // synchronous=FULL and foreign keys enforced. ":memory:" works for tests.
  explicit Db(const std::string& path);
  Db(const std::string& path, Options options);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // A statement from the cache (prepared on first use). If the same SQL is
  // already borrowed (nested use), a fresh uncached statement is prepared.
  Stmt prepare(std::string_view sql);
  // Runs one or more statements without parameters (DDL, pragmas).
  void exec(std::string_view sql);
  // The first column of the first row of `sql` as an integer (pragmas, counts).
  int64_t query_int(std::string_view sql);

  int64_t changes() const;  // rows changed by the last statement
  // The rowid of the last row an INSERT added on this connection (an upsert
  // that updated or did nothing leaves it as it was): with changes() == 1
  // after a plain INSERT or ON CONFLICT DO NOTHING, the new row's id. Far
  // cheaper than RETURNING, which SQLite runs through a temporary table.
  int64_t last_insert_rowid() const;
  bool in_transaction() const;
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(int rc, std::string_view sql) const;

 private:
  friend class Stmt;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void give_back(Stmt::Slot* slot, sqlite3_stmt* stmt);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Stmt::Slot>, Hash, std::equal_to<>> cache_;
};

// A transaction: BEGIN IMMEDIATE (for writes: takes the write lock now,
// waiting up to the busy timeout, so it cannot fail later on a lock upgrade)
// or BEGIN DEFERRED (for reads: one snapshot for several queries). commit() makes it durable; the
// destructor rolls back whatever was not committed (a thrown error, an early
// return). It does not commit on its own: a failing COMMIT must be an
// exception the caller sees, which a destructor cannot throw.
// A Deferred Tx begun inside an open transaction joins it: it begins,
// commits and rolls back nothing, and its reads see the outer transaction's
// snapshot (so a caller can read several things as one state).
class Tx {
 public:
  enum class Mode { Immediate, Deferred };
  explicit Tx(Db& db, Mode mode = Mode::Immediate);
  ~Tx();
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  void commit();

 private:
  Db& db_;
  bool open_ = true;
};

}  // namespace sluice::registry
