#include "engine/serve.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>

#include "engine/run_recorder.h"
#include "engine/serve_http.h"
#include "engine/state_store.h"

namespace sluice::engine {

namespace reg = sluice::registry;

ServeContext::ServeContext(ServeOptions options, std::unique_ptr<WallClock> c)
    : opt(std::move(options)),
      clock(std::move(c)),
      pool(opt.home + "/sluice.db"),
      writer(open_state_store(opt.home)),
      limiter(opt.rate_limit, opt.rate_burst),
      queue(QueueOptions{opt.home, opt.exe, std::filesystem::absolute(opt.workflows_dir).lexically_normal().string(), opt.max_runs},
            writer, pool),
      scheduler(*clock, writer, pool, queue, [this] { return catalog(); }) {}

ServeContext::~ServeContext() {
  scheduler.stop();
  queue.stop();
}

std::shared_ptr<const Catalog> ServeContext::catalog() const {
  std::lock_guard<std::mutex> lock(catalog_mu_);
  return catalog_;
}

void ServeContext::set_catalog(std::shared_ptr<const Catalog> c) {
  std::lock_guard<std::mutex> lock(catalog_mu_);
  catalog_ = std::move(c);
}

std::mutex& ServeContext::key_lock(const std::string& key) {
  return key_locks_[std::hash<std::string>{}(key) % key_locks_.size()];
}

namespace {

// Reports what was left out, and records every served workflow in the store
// (runs refer to it by digest).
std::shared_ptr<const Catalog> load(const ServeOptions& opt, BatchWriter& writer) {
  std::shared_ptr<const Catalog> cat = load_catalog(opt.workflows_dir);
  for (const LoadError& e : cat->errors) {
    std::fprintf(stderr, "%s", e.message.c_str());
    std::fprintf(stderr, "sluice serve: %s is not served: it does not validate\n", e.path.c_str());
  }
  std::vector<reg::Write> writes;
  const int64_t now = reg::now_ms();
  for (const auto& [name, w] : cat->workflows)
    writes.push_back(reg::PutWorkflow{.name = name, .digest = w.digest, .source = w.wf->source, .path = w.path, .at = now});
  writer.apply(std::move(writes));
  std::fprintf(stderr, "sluice serve: serving %zu workflow(s) from %s%s\n", cat->workflows.size(),
               opt.workflows_dir.c_str(),
               cat->errors.empty() ? "" : (", " + std::to_string(cat->errors.size()) + " left out").c_str());
  return cat;
}

}  // namespace

Server::Server(ServeOptions options, std::unique_ptr<WallClock> clock) : opt_(std::move(options)), clock_(std::move(clock)) {}

Server::~Server() = default;

bool Server::start(std::string& error) {
  try {
    ctx_ = std::make_unique<ServeContext>(opt_, std::move(clock_));
    ctx_->set_catalog(load(opt_, ctx_->writer));
  } catch (const std::exception& e) {
    error = "cannot open the store in " + opt_.home + ": " + e.what();
    return false;
  }
  http_ = std::make_unique<httplib::Server>();
  const unsigned threads = opt_.threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(opt_.max_body);
  http_->set_read_timeout(opt_.read_timeout_s, 0);
  http_->set_write_timeout(opt_.read_timeout_s, 0);
  http_->set_keep_alive_timeout(opt_.idle_timeout_s);
  http_->set_keep_alive_max_count(1000);
  // Headers and body go out as separate writes: without TCP_NODELAY, Nagle's
  // algorithm holds the body until the client's delayed ACK (~40 ms).
  http_->set_tcp_nodelay(true);
  install_routes(*http_, *ctx_);
  // cpp-httplib 0.11 listens with a backlog of 5: under a burst of new
  // connections (a load balancer, wrk) the kernel drops SYNs and clients wait
  // a second to retry. Keep the socket to raise the backlog after bind.
  int listen_fd = -1;
  http_->set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });
  if (opt_.port == 0) {
    port_ = http_->bind_to_any_port(opt_.host);
    if (port_ <= 0) error = "cannot listen on " + opt_.host + ": no free port";
  } else {
    port_ = http_->bind_to_port(opt_.host, opt_.port) ? opt_.port : -1;
    if (port_ <= 0) error = "cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) + ": " + std::strerror(errno);
  }
  if (port_ > 0 && listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  return port_ > 0;
}

void Server::run() {
  ctx_->queue.start();
  ctx_->scheduler.start();
  http_->listen_after_bind();
  // Drained: nothing new starts; what runs goes on in its own session.
  ctx_->scheduler.stop();
  ctx_->queue.stop();
}

void Server::reload() {
  try {
    ctx_->set_catalog(load(opt_, ctx_->writer));
    ctx_->scheduler.notify();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice serve: error: reloading failed, still serving what was loaded: %s\n", e.what());
  }
}

void Server::stop() {
  if (!ctx_ || !http_) return;
  ctx_->draining.store(true);
  http_->stop();
}

}  // namespace sluice::engine
