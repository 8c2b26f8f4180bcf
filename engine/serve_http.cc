#include "engine/serve_http.h"

#include <httplib.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "engine/serve.h"
#include "engine/serve_api.h"
#include "engine/serve_models.h"
#include "engine/serve_webhook.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

using Handler = void (*)(Call&);

struct Route {
  const char* method;
  const char* pattern;
  std::optional<reg::TokenScope> need;  // nullopt: no bearer token (healthz, the webhook)
  Handler handler;
};

// The whole API. A request needs at least `need`; handlers check the
// workflow a token is limited to, since only they know which one it is.
const std::vector<Route>& routes() {
  using S = reg::TokenScope;
  static const std::vector<Route> kRoutes = {
      {"GET", "/healthz", std::nullopt, get_healthz},
      {"GET", "/metrics", S::Read, get_metrics},
      {"GET", "/api/v1/workflows", S::Read, list_workflows},
      {"GET", "/api/v1/workflows/([^/]+)", S::Read, get_workflow},
      {"POST", "/api/v1/workflows/([^/]+)/runs", S::Trigger, trigger_run},
      {"GET", "/api/v1/runs", S::Read, list_runs},
      {"GET", "/api/v1/runs/([^/]+)", S::Read, get_run},
      {"GET", "/api/v1/runs/([^/]+)/steps/(.+)/log", S::Read, get_step_log},
      {"POST", "/api/v1/runs/([^/]+)/cancel", S::Trigger, cancel_run},
      {"GET", "/api/v1/schedules", S::Read, list_schedules},
      {"GET", "/api/v1/schedules/([^/]+)", S::Read, get_schedule},
      {"GET", "/api/v1/models", S::Read, list_models},
      {"GET", "/api/v1/models/([^/]+)", S::Read, get_model},
      {"PUT", "/api/v1/models/([^/]+)/aliases/([^/]+)", S::Admin, put_model_alias},
      {"POST", "/hooks/github", std::nullopt, github_hook},
  };
  return kRoutes;
}

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Reads a POST body through httplib's content reader: at most --max-body
// bytes are kept, the rest is read and dropped (so the connection stays in
// step for its next request) and answered with 413. httplib itself refuses an
// over-long Content-Length the same way; this also bounds chunked bodies,
// which it would otherwise buffer whole.
void read_body(ServeContext& ctx, const httplib::ContentReader& reader, httplib::Response& res, std::string& body) {
  bool over = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (over || body.size() + n > ctx.opt.max_body) {
      over = true;
      body.clear();
    } else {
      body.append(data, n);
    }
    return true;
  });
  if (over || res.status == 413)
    throw ApiError{413, "payload_too_large",
                   "the request body is larger than this server's limit of " + std::to_string(ctx.opt.max_body) + " bytes",
                   0};
  if (!ok) throw ApiError{400, "bad_request", "the request body could not be read", 0};
}

void serve(const Route& route, ServeContext& ctx, const httplib::Request& req, httplib::Response& res,
           const httplib::ContentReader* reader) {
  Call call{req, res, ctx, {}, {}};
  try {
    if (reader) read_body(ctx, *reader, res, call.body);
    if (ctx.draining.load() && route.handler != get_healthz)
      throw ApiError{503, "unavailable", "the server is shutting down", 1};
    if (route.need) {
      std::variant<Caller, ApiError> who;
      {
        auto store = ctx.pool.lease();
        who = authenticate(*store, req.get_header_value("Authorization"), ctx.clock->now_ms());
      }
      if (auto* e = std::get_if<ApiError>(&who)) throw *e;
      call.caller = std::get<Caller>(who);
      if (double wait = ctx.limiter.take(call.caller.token_id, steady_seconds()); wait > 0) {
        char rate[32];
        std::snprintf(rate, sizeof rate, "%g", ctx.opt.rate_limit);
        throw ApiError{429, "rate_limited",
                       "token " + call.caller.token_id + " is over its limit of " + rate + " requests per second",
                       std::max(1, static_cast<int>(std::ceil(wait)))};
      }
      if (static_cast<int>(call.caller.scope) < static_cast<int>(*route.need))
        throw *authorize(call.caller, *route.need, call.caller.workflow);
    }
    route.handler(call);
  } catch (const ApiError& e) {
    write_error(res, e);
  } catch (const reg::StoreError& e) {
    write_error(res, ApiError{500, "internal", std::string("the store failed: ") + e.what(), 0});
  } catch (const std::exception& e) {
    write_error(res, ApiError{500, "internal", e.what(), 0});
  }
}

// What cpp-httplib answers on its own (no route, body over the limit, a
// malformed request) gets the same JSON shape; a path served with another
// method is a 405 with Allow.
void on_error(const httplib::Request& req, httplib::Response& res) {
  ApiError e{res.status, "error", "request failed", 0};
  switch (res.status) {
    case 404: {
      std::string allow;
      for (const Route& r : routes())
        if (std::regex_match(req.path, std::regex(r.pattern))) allow += (allow.empty() ? "" : ", ") + std::string(r.method);
      if (!allow.empty()) {
        e = ApiError{405, "method_not_allowed", req.method + " is not allowed on " + req.path + ": use " + allow, 0};
        res.set_header("Allow", allow);
      } else {
        e = ApiError{404, "not_found", "no such endpoint: " + req.method + " " + req.path, 0};
      }
      break;
    }
    case 414: e = ApiError{414, "uri_too_long", "the request URI is too long", 0}; break;
    case 400: e = ApiError{400, "bad_request", "malformed HTTP request", 0}; break;
    default: break;
  }
  write_error(res, e);
}

}  // namespace

std::string Call::base_url() const {
  std::string host = req.get_header_value("Host");
  if (host.empty()) host = ctx.opt.host + ":" + std::to_string(ctx.opt.port);
  return "http://" + host;
}

std::string Call::param(int n) const {
  if (n < 0 || static_cast<size_t>(n) >= req.matches.size()) return {};
  return req.matches[static_cast<size_t>(n)].str();
}

int Call::int_query(const char* name, int fallback, int lo, int hi) const {
  if (!req.has_param(name)) return fallback;
  const std::string text = req.get_param_value(name);
  int v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < lo || v > hi)
    throw ApiError{400, "bad_request",
                   std::string("'") + name + "' must be an integer from " + std::to_string(lo) + " to " +
                       std::to_string(hi) + ", found '" + text + "'",
                   0};
  return v;
}

void Call::require(reg::TokenScope need, const std::string& workflow) const {
  if (auto e = authorize(caller, need, workflow)) throw *e;
}

void Call::json(int status, const nlohmann::json& payload) {
  res.status = status;
  res.set_content(payload.dump() + "\n", "application/json");
}

void write_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(nlohmann::json({{"error", e.code}, {"message", e.message}}).dump() + "\n", "application/json");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer realm=\"sluice\"");
  if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(e.retry_after));
}

void install_routes(httplib::Server& server, ServeContext& ctx) {
  for (const Route& r : routes()) {
    const std::string method = r.method;
    auto with_body = [&ctx, &r](const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) { serve(r, ctx, req, res, &reader); };
    if (method == "GET")
      server.Get(r.pattern, [&ctx, &r](const httplib::Request& req, httplib::Response& res) {
        serve(r, ctx, req, res, nullptr);
      });
    else if (method == "PUT")
      server.Put(r.pattern, with_body);
    else
      server.Post(r.pattern, with_body);
  }
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a handler answered
        on_error(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    write_error(res, ApiError{500, "internal", what, 0});
  });
}

}  // namespace sluice::engine
