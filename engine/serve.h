#pragma once
// `sluice serve`: the HTTP API, the webhook receiver, the run queue and the
// cron scheduler in one process. ServeContext is what request handlers
// share; Server ties it to the listening socket and the process's signals.
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "engine/serve_auth.h"
#include "engine/serve_catalog.h"
#include "engine/serve_clock.h"
#include "engine/serve_cron.h"
#include "engine/serve_metrics.h"
#include "engine/serve_queue.h"
#include "engine/serve_store.h"

namespace httplib {
class Server;
}

namespace sluice::engine {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0 = any free port
  std::string workflows_dir = ".";
  std::string home;              // the state folder (absolute)
  unsigned max_runs = 2;         // runs executing at once
  size_t max_body = 1 << 20;     // bytes; a larger request body gets 413, unparsed
  int read_timeout_s = 10;       // a request's headers or body stalling longer is dropped
  int idle_timeout_s = 5;        // a kept-alive connection idle longer is closed
  double rate_limit = 20;        // requests per second per token (0 = no limit)
  double rate_burst = 40;        // requests a token may make at once
  unsigned threads = 64;         // connections served at once
  std::string webhook_secret;    // "" = POST /hooks/github is off
  std::string exe;               // the sluice binary runs are started with
};

class ServeContext {
 public:
  ServeContext(ServeOptions options, std::unique_ptr<WallClock> clock);
  ~ServeContext();

  const ServeOptions opt;
  const std::unique_ptr<WallClock> clock;
  StorePool pool;
  BatchWriter writer;
  RateLimiter limiter;
  RunQueue queue;
  Scheduler scheduler;
  StepHistogram histogram;
  std::atomic<bool> draining{false};

  std::shared_ptr<const Catalog> catalog() const;
  void set_catalog(std::shared_ptr<const Catalog> c);
  // Requests with the same Idempotency-Key (or webhook delivery) take turns.
  std::mutex& key_lock(const std::string& key);

 private:
  mutable std::mutex catalog_mu_;
  std::shared_ptr<const Catalog> catalog_;
  std::array<std::mutex, 64> key_locks_;
};

class Server {
 public:
  explicit Server(ServeOptions options, std::unique_ptr<WallClock> clock);
  ~Server();

  // Loads the workflows (printing what is left out), opens the store and
  // binds the socket. False with `error` set.
  bool start(std::string& error);
  int port() const { return port_; }
  // Serves until stop(); adopts left-over runs and starts the queue and the
  // scheduler first.
  void run();
  // Reloads the workflows folder (SIGHUP): invalid files are reported and
  // left out, the rest replace what was served.
  void reload();
  // Drains (SIGTERM): stops accepting, finishes requests in flight, starts no
  // more runs and fires no more schedules; runs in progress go on and the next
  // server adopts them. run() then returns.
  void stop();

 private:
  ServeOptions opt_;
  std::unique_ptr<ServeContext> ctx_;
  std::unique_ptr<WallClock> clock_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
};

}  // namespace sluice::engine
