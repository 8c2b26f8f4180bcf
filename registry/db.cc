#include "registry/db.h"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

namespace sluice::registry {

struct Stmt::Slot {
  sqlite3_stmt* stmt = nullptr;
  bool in_use = false;
};

namespace {

// The SQL on one line and not too long, for an error message; the whole text
// stays available as StoreError::sql().
std::string one_line(std::string_view sql) {
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
    if (out.size() > 400) return out + "...";
  }
  return out;
}

}  // namespace

// ---- Stmt -----------------------------------------------------------------

Stmt::Stmt(Db* db, Slot* slot, sqlite3_stmt* stmt) : db_(db), slot_(slot), stmt_(stmt) {}

Stmt::Stmt(Stmt&& other) noexcept : db_(other.db_), slot_(other.slot_), stmt_(other.stmt_) {
  other.slot_ = nullptr;
  other.stmt_ = nullptr;
}

Stmt::~Stmt() {
  if (!stmt_) return;
  // Resetting ends the statement's read of the database, so a half-read
  // SELECT does not pin a WAL snapshot (and block checkpoints) while cached.
  sqlite3_reset(stmt_);
  if (slot_) {
    sqlite3_clear_bindings(stmt_);
    slot_->in_use = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

void Stmt::fail(int rc) const { db_->fail(rc, sql()); }

std::string Stmt::sql() const {
  const char* s = sqlite3_sql(stmt_);
  return s ? s : "";
}

int Stmt::parameter_index(const char* name) const {
  int i = sqlite3_bind_parameter_index(stmt_, name);
  if (i == 0) throw StoreError(std::string("no SQL parameter ") + name + " in: " + one_line(sql()), 0, sql());
  return i;
}

void Stmt::bind_null(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) fail(rc);
}

void Stmt::bind_int64(int index, int64_t v) {
  if (int rc = sqlite3_bind_int64(stmt_, index, v); rc != SQLITE_OK) fail(rc);
}

void Stmt::bind_double(int index, double v) {
  if (int rc = sqlite3_bind_double(stmt_, index, v); rc != SQLITE_OK) fail(rc);
}

void Stmt::bind_text(int index, std::string_view v) {
  int rc = sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(rc);
}

Stmt& Stmt::bind_blob(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(rc);
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(rc);
}

void Stmt::run() {
  while (step()) {
  }
}

int Stmt::column_count() const { return sqlite3_column_count(stmt_); }

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::real(int col) const {
  if (is_null(col)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(stmt_, col);
}

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string Stmt::blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (!p) return {};
  return std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<int64_t> Stmt::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return sqlite3_column_int64(stmt_, col);
}

// ---- Db -------------------------------------------------------------------

Db::Db(const std::string& path) : Db(path, Options{}) {}

// Before the first connection: no memory statistics. SQLite then takes no
// global mutex around every allocation, which the engine's threads (the
// executor's cache lookups, the recorder's writer) would otherwise contend
// for. Fails harmlessly (SQLITE_MISUSE) if SQLite was initialised already.
static void configure_sqlite() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

Db::Db(const std::string& path, Options options) : path_(path) {
  configure_sqlite();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError(path + ": cannot open the database: " + msg, rc);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  try {
    // Durability. WAL lets readers (sluice runs, the HTTP API) read while one
    // writer commits. In WAL mode synchronous=NORMAL only fsyncs at
    // checkpoints, so the last commits can vanish in a power cut; FULL fsyncs
    // the WAL at every commit. A state change the user was told about (a step
    // done, a run queued by the API, a cron fire) must survive a power cut,
    // and batched writes keep the cost at one fsync per batch.
    auto journal_mode = [&](const char* sql) {
      Stmt s = prepare(sql);
      return s.step() ? s.text(0) : std::string();
    };
    std::string mode = journal_mode("PRAGMA journal_mode");
    // Switching a new database to WAL takes an exclusive lock, and SQLite
    // answers SQLITE_BUSY at once (no busy handler) when another process
    // holds any lock, e.g. one opening the same new file: retry until the
    // busy timeout. WAL is persistent, so this happens once per file.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
    while (mode != "wal" && mode != "memory") {
      try {
        mode = journal_mode("PRAGMA journal_mode=WAL");
        break;
      } catch (const StoreError& e) {
        if ((e.code() & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (mode != "wal" && mode != "memory")
      throw StoreError(path + ": cannot switch the database to WAL mode (journal_mode is " + mode + ")");
    exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    if (query_int("PRAGMA foreign_keys") != 1)
      throw StoreError(path + ": this SQLite cannot enforce foreign keys");
    // Closing the last connection neither checkpoints nor deletes the WAL:
    // commands open and close several connections per run, and each such
    // close cost a checkpoint and each next open a new WAL file, with their
    // syncs. Commits are durable in the WAL either way; checkpoints happen
    // as the WAL grows (SQLite's wal_autocheckpoint).
    if (mode == "wal") {
      int persist = 1;
      sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    }
  } catch (...) {
    for (auto& [sql, slot] : cache_) sqlite3_finalize(slot->stmt);
    cache_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Db::~Db() {
  for (auto& [sql, slot] : cache_) sqlite3_finalize(slot->stmt);
  sqlite3_close_v2(db_);
}

void Db::fail(int rc, std::string_view sql) const {
  std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  int code = db_ ? sqlite3_extended_errcode(db_) : rc;
  std::string what = path_ + ": " + msg + " (sqlite error " + std::to_string(code) + ")";
  if (!sql.empty()) what += " in: " + one_line(sql);
  throw StoreError(what, code, std::string(sql));
}

Stmt Db::prepare(std::string_view sql) {
  auto compile = [&](unsigned flags) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), flags, &stmt, &tail);
    if (rc != SQLITE_OK) fail(rc, sql);
    if (!stmt) throw StoreError(path_ + ": empty SQL statement", 0, std::string(sql));
    for (const char* p = tail; p && p < sql.data() + sql.size(); ++p) {
      if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
        sqlite3_finalize(stmt);
        throw StoreError(path_ + ": prepare() takes one statement, got more in: " + one_line(sql), 0,
                         std::string(sql));
      }
    }
    return stmt;
  };
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto slot = std::make_unique<Stmt::Slot>();
    slot->stmt = compile(SQLITE_PREPARE_PERSISTENT);
    it = cache_.emplace(std::string(sql), std::move(slot)).first;
  }
  Stmt::Slot* slot = it->second.get();
  if (slot->in_use) return Stmt(this, nullptr, compile(0));
  slot->in_use = true;
  return Stmt(this, slot, slot->stmt);
}

void Db::exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, sql);
}

int64_t Db::query_int(std::string_view sql) {
  Stmt s = prepare(sql);
  return s.step() ? s.int64(0) : 0;
}

int64_t Db::changes() const { return sqlite3_changes64(db_); }
int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

bool Db::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

// ---- Tx -------------------------------------------------------------------

Tx::Tx(Db& db, Mode mode) : db_(db) {
  if (mode == Mode::Deferred && db_.in_transaction()) {
    open_ = false;  // joined: the outer transaction ends it
    return;
  }
  db_.exec(mode == Mode::Immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Tx::~Tx() {
  if (!open_ || !db_.in_transaction()) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const StoreError&) {
    // Nothing to do: SQLite rolls back itself when the connection closes.
  }
}

void Tx::commit() {
  if (!open_) return;  // joined an outer transaction
  db_.exec("COMMIT");
  open_ = false;
}

}  // namespace sluice::registry
