#include "engine/serve_store.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <thread>

#include "registry/sqlite_store.h"

namespace sluice::engine {

namespace reg = sluice::registry;

struct BatchWriter::Impl {
  struct Pending {
    std::vector<reg::Write> batch;
    std::promise<void> done;
  };

  explicit Impl(std::unique_ptr<reg::Store> s) : store(std::move(s)), thread([this] { loop(); }) {}

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closing = true;
    }
    wake.notify_all();
    thread.join();
  }

  void loop() {
    for (;;) {
      std::deque<Pending> group;
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return closing || !queue.empty(); });
        if (queue.empty()) return;
        group.swap(queue);
      }
      commit(group);
    }
  }

  // One transaction for the whole group; if it fails, each batch alone, so
  // one bad batch fails only its own caller.
  void commit(std::deque<Pending>& group) {
    if (group.size() > 1) {
      std::vector<reg::Write> all;
      for (Pending& p : group) all.insert(all.end(), p.batch.begin(), p.batch.end());
      try {
        store->apply(all);
        ++commits;
        for (Pending& p : group) p.done.set_value();
        return;
      } catch (const std::exception&) {
      }
    }
    for (Pending& p : group) {
      try {
        store->apply(p.batch);
        ++commits;
        p.done.set_value();
      } catch (...) {
        p.done.set_exception(std::current_exception());
      }
    }
  }

  std::unique_ptr<reg::Store> store;
  std::mutex mu;
  std::condition_variable wake;
  std::deque<Pending> queue;
  bool closing = false;
  std::atomic<uint64_t> commits{0};
  std::thread thread;
};

BatchWriter::BatchWriter(std::unique_ptr<reg::Store> store) : impl_(std::make_unique<Impl>(std::move(store))) {}
BatchWriter::~BatchWriter() = default;

void BatchWriter::apply(std::vector<reg::Write> batch) {
  if (batch.empty()) return;
  std::future<void> done;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back(Impl::Pending{std::move(batch), {}});
    done = impl_->queue.back().done.get_future();
  }
  impl_->wake.notify_one();
  done.get();
}

uint64_t BatchWriter::commits() const { return impl_->commits.load(); }

StorePool::StorePool(std::string db_path) : path_(std::move(db_path)) {}
StorePool::~StorePool() = default;

StorePool::Lease StorePool::lease() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<reg::Store> s = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(s));
    }
  }
  return Lease(*this, reg::open_sqlite_store(path_));
}

StorePool::Lease::~Lease() {
  if (!store_) return;
  std::lock_guard<std::mutex> lock(pool_.mu_);
  pool_.idle_.push_back(std::move(store_));
}

}  // namespace sluice::engine
