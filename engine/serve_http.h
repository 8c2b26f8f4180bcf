#pragma once
// The HTTP side of `sluice serve`: the route table and what every route
// shares: bearer-token authentication, the per-token rate limit, and JSON
// errors ({"error", "message"}) for everything that goes wrong, including
// what cpp-httplib itself refuses (413, 404, 400).
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "engine/serve_auth.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace sluice::engine {

class ServeContext;

// One request on its way through a handler. Handlers answer with json() /
// text(), or throw ApiError.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  ServeContext& ctx;
  Caller caller;     // who called; empty for routes without a token
  std::string body;  // the request body (POST, PUT), at most --max-body bytes

  // "http://HOST" as the client addressed this server.
  std::string base_url() const;
  // The n-th capture of the route's pattern (1-based), URL-decoded.
  std::string param(int n) const;
  // Query parameter `name` as an integer in [lo, hi]; `fallback` when
  // absent; 400 when it is not one.
  int int_query(const char* name, int fallback, int lo, int hi) const;
  // 403 unless the caller may do `need` on `workflow` ("" = every workflow).
  void require(registry::TokenScope need, const std::string& workflow) const;
  void json(int status, const nlohmann::json& payload);
};

void install_routes(httplib::Server& server, ServeContext& ctx);

// The JSON error body for `e`, and its headers (WWW-Authenticate, Retry-After).
void write_error(httplib::Response& res, const ApiError& e);

}  // namespace sluice::engine
