// deploy.http: POST a model to a serving endpoint, poll its health URL until
// it answers 2xx, and when it does not in time, POST the rollback model and
// poll again. The step fails whenever the new model is not the one serving.
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "dsl/units.h"
#include "plugins/deploy/actions.h"
#include "plugins/support/http.h"

namespace sluice::plugins::deploy {

namespace {

using nlohmann::json;
using sluice::plugin::BadArgs;
using sluice::plugin::Failed;
using sluice::plugin::Host;
using Clock = std::chrono::steady_clock;

// What is POSTed: a file as the body, or a URL as {"model_url": ...}.
struct Model {
  std::optional<std::string> artifact, url;
};

struct Settings {
  std::string endpoint, health_url, content_type;
  std::chrono::milliseconds timeout{0}, health_timeout{0}, health_interval{0};
  RetryPolicy retry;
  std::vector<std::string> headers;
};

// POSTs `m`; throws Failed when the endpoint does not take it.
void post_model(const Settings& s, const Model& m, const Host& host) {
  HttpRequest req;
  req.method = "POST";
  req.url = s.endpoint;
  req.timeout = s.timeout;
  req.headers = s.headers;
  if (m.artifact) {
    req.upload_path = *m.artifact;
    req.headers.push_back("Content-Type: " + s.content_type);
  } else {
    req.body = json{{"model_url", *m.url}}.dump();
    req.headers.push_back("Content-Type: application/json");
  }
  const std::string what = "POST " + s.endpoint;
  int attempts = 0;
  HttpResponse r = http_with_retries(s.retry, what, host, [&] { return http_perform(req, host); }, attempts);
  if (!r.ok()) throw Failed(http_failure(what, r, req, attempts));
}

// Polls the health URL; "" once it answers 2xx, else the last answer
// ("HTTP 503", a connection error) when health_timeout has passed.
std::string wait_healthy(const Settings& s, const Host& host, int& checks) {
  const auto deadline = Clock::now() + s.health_timeout;
  std::string last = "no answer";
  for (checks = 1;; ++checks) {
    HttpRequest req;
    req.url = s.health_url;
    req.headers = s.headers;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    req.timeout = std::max(std::chrono::milliseconds(1), std::min(s.timeout, left));
    HttpResponse r = http_perform(req, host);
    if (r.cancelled) throw sluice::plugin::Cancelled();
    if (r.ok()) return "";
    last = r.timed_out ? "timed out" : !r.error.empty() ? r.error : "HTTP " + std::to_string(r.status);
    if (Clock::now() + s.health_interval >= deadline) return last;
    sleep_cancellable(s.health_interval, host);
  }
}

Model model_of(const Args& a, const char* file_arg, const char* url_arg, bool required) {
  Model m{a.opt_string(file_arg), a.opt_string(url_arg)};
  if (m.artifact && m.url) throw BadArgs(std::string("give '") + file_arg + "' or '" + url_arg + "', not both");
  if (required && !m.artifact && !m.url) throw BadArgs(std::string("give '") + file_arg + "' or '" + url_arg + "'");
  return m;
}

}  // namespace

std::string http(const Host& host, const Args& a) {
  Settings s;
  s.endpoint = a.string("endpoint");
  s.health_url = a.string("health_url");
  s.content_type = a.string("content_type");
  s.timeout = a.duration("timeout");
  s.health_timeout = a.duration("health_timeout");
  s.health_interval = a.duration("health_interval");
  s.retry.retries = a.integer("retries");
  s.retry.backoff = a.duration("backoff");
  for (const auto& [k, v] : a.string_table("headers")) s.headers.push_back(k + ": " + v);
  const Model model = model_of(a, "artifact", "model_url", true);
  const Model previous = model_of(a, "rollback_artifact", "rollback_url", false);
  const bool can_roll_back = previous.artifact || previous.url;

  post_model(s, model, host);
  int checks = 0;
  const std::string unhealthy = wait_healthy(s, host, checks);
  if (unhealthy.empty()) {
    host.log("deployed to " + s.endpoint + "; healthy after " + std::to_string(checks) + " check(s)");
    return json{{"deployed", true}, {"rolled_back", false}, {"health_checks", checks}}.dump();
  }

  const std::string why = s.health_url + " not healthy within " + dsl::format_duration(s.health_timeout) + " (last: " +
                          unhealthy + ")";
  host.set_value("deployed", "false");
  if (!can_roll_back) throw Failed(why + "; nothing to roll back to (set rollback_artifact or rollback_url)");
  host.warn(why + "; rolling back");
  try {
    post_model(s, previous, host);
    const std::string still = wait_healthy(s, host, checks);
    if (!still.empty()) throw Failed("the previous model is not healthy either (last: " + still + ")");
  } catch (const Failed& e) {
    host.set_value("rolled_back", "false");
    throw Failed(why + "; rollback failed: " + e.what());
  }
  host.set_value("rolled_back", "true");
  throw Failed(why + "; rolled back to the previous model");
}

}  // namespace sluice::plugins::deploy
