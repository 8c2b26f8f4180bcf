#pragma once
// HTTP for the built-in plugins, through libcurl: one request with a timeout,
// a response size limit and cancellation (the host's is_cancelled), and a
// retry loop with exponential backoff for failures worth retrying
// (connection errors, timeouts, 408, 429, 5xx).
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sluice/plugin.hpp"

namespace sluice::plugins {

struct HttpRequest {
  std::string method = "GET";             // GET, POST, PUT
  std::string url;                        // http:// or https://
  std::vector<std::string> headers;       // "Name: value"
  std::string body;                       // POST/PUT body (unless upload_path is set)
  std::string upload_path;                // PUT/POST: stream this file as the body
  std::chrono::milliseconds timeout{0};   // the whole request; 0 = none
  uint64_t max_size = 0;                  // response body limit; 0 = none
  // Receives the response body as it arrives (when set; else it collects in
  // HttpResponse::body, up to 1 MiB). Returning false aborts the transfer.
  std::function<bool(const char* data, size_t size)> on_body;
};

struct HttpResponse {
  long status = 0;          // the HTTP status; 0 when none arrived
  std::string error;        // why no response arrived (transport), else ""
  bool timed_out = false;
  bool too_big = false;     // the body passed max_size
  bool cancelled = false;   // the host cancelled the step
  bool aborted = false;     // on_body returned false
  uint64_t bytes = 0;       // body bytes received
  std::string body;
  bool ok() const { return error.empty() && !too_big && !aborted && status >= 200 && status < 300; }
};

HttpResponse http_perform(const HttpRequest& request, const sluice::plugin::Host& host);

// Worth another attempt: a transport error or timeout, 408, 429 or a 5xx.
bool http_transient(const HttpResponse& r);

struct RetryPolicy {
  int64_t retries = 3;                       // attempts after the first
  std::chrono::milliseconds backoff{1000};   // before the 2nd attempt; doubled each time, at most 1 min
};

// Calls `attempt()` until it succeeds, fails for good, or retries run out,
// logging each retry as "<what>: <why>, retrying in <delay> (attempt i of n)".
// Sets `attempts`; throws sluice::plugin::Cancelled if the host cancels.
HttpResponse http_with_retries(const RetryPolicy& policy, const std::string& what, const sluice::plugin::Host& host,
                               const std::function<HttpResponse()>& attempt, int& attempts);

// One line: "<what>: HTTP 503; gave up after 4 attempts", "<what>: timed out after 2s", ...
std::string http_failure(const std::string& what, const HttpResponse& r, const HttpRequest& request, int attempts);

// Waits `d`, waking every 50 ms to ask the host; throws Cancelled.
void sleep_cancellable(std::chrono::milliseconds d, const sluice::plugin::Host& host);

// `base` + "/" + `name`, each '/'-separated segment of `name` percent-encoded.
std::string url_join(const std::string& base, const std::string& name);

// The URL's host (for messages that must not show a whole URL, which may hold a token).
std::string url_host(const std::string& url);

}  // namespace sluice::plugins
