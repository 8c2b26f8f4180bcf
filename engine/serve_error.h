#pragma once
// What the HTTP API answers when a request cannot be served: a 4xx (or 5xx)
// status and the JSON body {"error": code, "message": one line}.
#include <string>

namespace sluice::engine {

struct ApiError {
  int status = 400;
  std::string code;     // stable, machine-readable: "unauthorized", "invalid_params", ...
  std::string message;  // for people
  int retry_after = 0;  // seconds, for 429 (and 503)
};

}  // namespace sluice::engine
