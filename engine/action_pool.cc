#include "engine/action_pool.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "engine/lazy_log.h"

namespace sluice::engine {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Job {
  ActionPool::Id id = 0;
  std::shared_ptr<ActionHandler> handler;
  ActionCall call;
  bool stream = false;
  std::atomic<bool> cancel{false};
};

}  // namespace

struct ActionPool::Impl {
  size_t max_threads;
  std::function<void()> notify;

  mutable std::mutex mu;
  std::condition_variable work_cv;
  std::deque<std::shared_ptr<Job>> queue;
  std::unordered_map<Id, std::shared_ptr<Job>> live;  // submitted, not yet taken
  std::vector<Finished> finished;
  std::vector<Line> lines;
  std::vector<std::thread> threads;
  size_t idle = 0;
  bool closing = false;
  Id next_id = 1;

  // The host side of one attempt, on its worker thread.
  class Context : public ActionContext {
   public:
    Context(Impl& pool, Job& job, std::unique_ptr<LuaHost>& host)
        : log_(job.call.log_path), pool_(pool), job_(job), host_(host) {
      if (job.call.timeout.count() > 0) deadline_ = SteadyClock::now() + job.call.timeout;
    }
    // The log file is created on the first line: an attempt that logs
    // nothing costs no file (most Lua steps; see docs/lua.md).
    void log(std::string_view line) override {
      std::string text(line);
      text += '\n';
      log_.write(text);
      if (job_.stream) pool_.push_line(job_.id, std::string(line));
    }
    void metric(const std::string& name, double value, std::optional<int64_t>) override {
      metrics.emplace_back(name, value);
    }
    bool cancelled() const override {
      return job_.cancel.load() || (deadline_ && SteadyClock::now() >= *deadline_);
    }
    const std::atomic<bool>* cancel_flag() const override { return &job_.cancel; }
    std::optional<std::chrono::milliseconds> time_left() const override {
      if (!deadline_) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - SteadyClock::now());
      return std::max(left, std::chrono::milliseconds(0));
    }
    LuaHost& lua() override {
      if (!host_) host_ = std::make_unique<LuaHost>();
      return *host_;
    }
    bool past_deadline() const { return deadline_ && SteadyClock::now() >= *deadline_; }

    std::vector<std::pair<std::string, double>> metrics;
    LazyLog log_;  // the attempt's log; error() once it could not be created

   private:
    Impl& pool_;
    Job& job_;
    std::unique_ptr<LuaHost>& host_;
    std::optional<SteadyClock::time_point> deadline_;
  };

  void push_line(Id id, std::string text) {
    {
      std::lock_guard<std::mutex> lock(mu);
      lines.push_back(Line{id, std::move(text)});
    }
    notify();
  }

  void run_job(Job& job, std::unique_ptr<LuaHost>& host) {
    Finished f;
    f.id = job.id;
    f.started = std::chrono::system_clock::now();
    {
      Context ctx(*this, job, host);
      try {
        f.result = job.handler->invoke(job.call, ctx);
      } catch (const std::exception& e) {
        f.result = ActionResult{};
        f.result.error = std::string("internal error in the action: ") + e.what();
        ctx.log(f.result.error);
      }
      if (!f.result.ok && !f.result.cancelled && job.cancel.load()) f.result.cancelled = true;
      if (!f.result.ok && !f.result.timed_out && !f.result.cancelled && ctx.past_deadline()) f.result.timed_out = true;
      ctx.log_.close();  // complete before the attempt is reported
      if (!ctx.log_.error().empty() && f.result.ok) f.result = ActionResult{false, false, false, ctx.log_.error(), {}};
      f.metrics = std::move(ctx.metrics);
    }
    f.finished = std::chrono::system_clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      finished.push_back(std::move(f));
    }
    notify();
  }

  void worker() {
    std::unique_ptr<LuaHost> host;  // this thread's, created on first use
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      ++idle;
      work_cv.wait(lock, [&] { return closing || !queue.empty(); });
      --idle;
      if (queue.empty()) return;  // closing
      std::shared_ptr<Job> job = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      run_job(*job, host);
      lock.lock();
    }
  }
};

ActionPool::ActionPool(size_t max_threads, std::function<void()> notify) : impl_(std::make_unique<Impl>()) {
  impl_->max_threads = std::max<size_t>(1, max_threads);
  impl_->notify = std::move(notify);
}

ActionPool::~ActionPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closing = true;
    for (auto& [id, job] : impl_->live) job->cancel = true;
  }
  impl_->work_cv.notify_all();
  for (std::thread& t : impl_->threads) t.join();
}

ActionPool::Id ActionPool::submit(std::shared_ptr<ActionHandler> handler, ActionCall call, bool stream) {
  auto job = std::make_shared<Job>();
  job->handler = std::move(handler);
  job->call = std::move(call);
  job->stream = stream;
  std::lock_guard<std::mutex> lock(impl_->mu);
  job->id = impl_->next_id++;
  impl_->live.emplace(job->id, job);
  impl_->queue.push_back(job);
  if (impl_->idle < impl_->queue.size() && impl_->threads.size() < impl_->max_threads)
    impl_->threads.emplace_back([this] { impl_->worker(); });
  impl_->work_cv.notify_one();
  return job->id;
}

void ActionPool::cancel(Id id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->live.find(id);
  if (it != impl_->live.end()) it->second->cancel = true;
}

void ActionPool::cancel_all() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto& [id, job] : impl_->live) job->cancel = true;
}

std::vector<ActionPool::Finished> ActionPool::take_finished() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Finished> out = std::exchange(impl_->finished, {});
  for (const Finished& f : out) impl_->live.erase(f.id);
  return out;
}

std::vector<ActionPool::Line> ActionPool::take_lines() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::exchange(impl_->lines, {});
}

size_t ActionPool::running() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->live.size();
}

}  // namespace sluice::engine
