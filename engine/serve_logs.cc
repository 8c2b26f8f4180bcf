#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "dsl/suggest.h"
#include "engine/serve.h"
#include "engine/serve_api.h"
#include "registry/artifact_store.h"

// GET /api/v1/runs/{id}/steps/{node}/log: a step's log, whole or followed.
namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

// The text of an attempt's log: the file while the step runs, the artifact
// store once it is recorded there; "" when neither a file nor a digest
// exists (the file is created at the first byte: no output yet, or none).
// nullopt when a recorded log is gone.
std::optional<std::string> read_log(const std::string& home, const reg::AttemptRow& a, int64_t offset, size_t max) {
  if (!a.log_path.empty()) {
    int fd = ::open(a.log_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st {};
      const int64_t size = ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
      std::string out(static_cast<size_t>(std::clamp<int64_t>(size - offset, 0, static_cast<int64_t>(max))), '\0');
      ssize_t n = out.empty() ? 0 : ::pread(fd, out.data(), out.size(), offset);
      ::close(fd);
      out.resize(n > 0 ? static_cast<size_t>(n) : 0);
      return out;
    }
  }
  if (a.log_digest.empty()) return std::string();
  auto cas = reg::ArtifactStore::open(home);
  auto digest = reg::Digest::parse(a.log_digest);
  if (cas && digest) {
    if (auto bytes = cas->read(*digest)) {
      if (offset >= static_cast<int64_t>(bytes->size())) return std::string();
      return bytes->substr(static_cast<size_t>(offset), max);
    }
  }
  return std::nullopt;
}

// Streams one step's log as it is written (?follow=1): attempt after attempt
// until the step is final, with a "--- attempt N ---" line before each
// retry's log.
class LogFollower {
 public:
  LogFollower(ServeContext& ctx, std::string run_id, std::string node, int attempt, bool only_this)
      : ctx_(ctx), run_(std::move(run_id)), node_(std::move(node)), attempt_(attempt), only_(only_this) {}

  bool next(httplib::DataSink& sink) {
    for (int waited = 0; waited < 20; ++waited) {
      if (ctx_.draining.load() || !sink.is_writable()) {
        sink.done();
        return true;
      }
      std::vector<reg::AttemptRow> attempts;
      std::optional<reg::StepRow> step;
      std::optional<reg::RunRow> run;
      {
        auto store = ctx_.pool.lease();
        attempts = store->attempts(run_, node_);
        step = store->step(run_, node_);
        run = store->run(run_);
      }
      const bool step_final = (step && reg::is_final(step->status)) || (run && reg::is_final(run->status));
      auto a = std::find_if(attempts.begin(), attempts.end(), [&](const reg::AttemptRow& r) { return r.number == attempt_; });
      if (a == attempts.end()) {
        if (step_final) {
          sink.done();
          return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (std::optional<std::string> data = read_log(ctx_.opt.home, *a, offset_, 64 * 1024); data && !data->empty()) {
        offset_ += static_cast<int64_t>(data->size());
        return sink.write(data->data(), data->size());
      }
      if (a->finished_at) {  // read to the end after it finished: this attempt is done
        if (only_ || (step_final && std::none_of(attempts.begin(), attempts.end(),
                                                 [&](const reg::AttemptRow& r) { return r.number > attempt_; }))) {
          sink.done();
          return true;
        }
        if (std::any_of(attempts.begin(), attempts.end(), [&](const reg::AttemptRow& r) { return r.number > attempt_; })) {
          ++attempt_;
          offset_ = 0;
          const std::string marker = "--- attempt " + std::to_string(attempt_) + " ---\n";
          return sink.write(marker.data(), marker.size());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;  // nothing new for a while; httplib calls again
  }

 private:
  ServeContext& ctx_;
  std::string run_, node_;
  int attempt_;
  bool only_;
  int64_t offset_ = 0;
};

}  // namespace

void get_step_log(Call& call) {
  const std::string id = call.param(1), node = call.param(2);
  std::vector<reg::AttemptRow> attempts;
  {
    auto store = call.ctx.pool.lease();
    auto run = store->run(id);
    if (!run) throw ApiError{404, "not_found", "no run '" + id + "'", 0};
    call.require(reg::TokenScope::Read, run->workflow_name);
    if (!store->step(id, node)) {
      std::vector<std::string> nodes;
      for (const reg::StepRow& s : store->steps(id)) nodes.push_back(s.node);
      // A step not recorded yet may still come: follow waits for it.
      if (call.req.get_param_value("follow") != "1" || reg::is_final(run->status))
        throw ApiError{404, "not_found", "run " + id + " has no step '" + node + "'" + dsl::did_you_mean(node, nodes), 0};
    }
    attempts = store->attempts(id, node);
  }
  const int latest = attempts.empty() ? 1 : attempts.back().number;
  const int attempt = call.int_query("attempt", latest, 1, 1000);
  const bool follow = call.req.get_param_value("follow") == "1";
  if (follow) {
    auto f = std::make_shared<LogFollower>(call.ctx, id, node, attempt, call.req.has_param("attempt"));
    call.res.status = 200;
    call.res.set_chunked_content_provider("text/plain; charset=utf-8",
                                          [f](size_t, httplib::DataSink& sink) { return f->next(sink); });
    return;
  }
  auto a = std::find_if(attempts.begin(), attempts.end(), [&](const reg::AttemptRow& r) { return r.number == attempt; });
  if (a == attempts.end())
    throw ApiError{404, "not_found",
                   attempts.empty() ? "step '" + node + "' of run " + id + " has not started: no log yet"
                                    : "step '" + node + "' of run " + id + " has no attempt " + std::to_string(attempt),
                   0};
  std::optional<std::string> text = read_log(call.ctx.opt.home, *a, 0, size_t{1} << 30);
  if (!text) throw ApiError{404, "not_found", "the log of attempt " + std::to_string(attempt) + " is gone", 0};
  call.res.status = 200;
  call.res.set_header("X-Sluice-Attempt", std::to_string(attempt));
  call.res.set_content(*text, "text/plain; charset=utf-8");
}

}  // namespace sluice::engine
