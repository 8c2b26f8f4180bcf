#pragma once
// How the server's threads share the metadata store. Writes go through one
// BatchWriter: callers on many threads hand it batches, a writer thread
// commits whatever has gathered in one transaction (group commit: one fsync
// for many requests), and each caller returns once its batch is durable.
// Reads borrow a connection from a StorePool (SQLite in WAL mode: readers
// never wait for the writer).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "registry/store.h"

namespace sluice::engine {

class BatchWriter {
 public:
  explicit BatchWriter(std::unique_ptr<registry::Store> store);
  ~BatchWriter();  // commits what is pending, then stops
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Applies `batch` in one transaction, possibly shared with other callers'
  // batches; returns once it is committed. A batch that fails throws its
  // registry::StoreError and commits nothing; other callers' batches are not
  // affected by it. Any thread.
  void apply(std::vector<registry::Write> batch);

  uint64_t commits() const;  // transactions committed so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class StorePool {
 public:
  explicit StorePool(std::string db_path);
  ~StorePool();

  // A connection for the caller's thread until the Lease is destroyed.
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<registry::Store> store) : pool_(pool), store_(std::move(store)) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    registry::Store* operator->() { return store_.get(); }
    registry::Store& operator*() { return *store_; }

   private:
    StorePool& pool_;
    std::unique_ptr<registry::Store> store_;
  };
  Lease lease();

 private:
  std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<registry::Store>> idle_;
};

}  // namespace sluice::engine
