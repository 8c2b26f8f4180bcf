#pragma once
// API tokens: deny by default. A token is a random secret shown once; the
// store keeps its SHA-256, its scope (read < trigger < admin), an optional
// workflow it is limited to, an expiry and a revocation time.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "engine/serve_error.h"
#include "registry/store.h"

namespace sluice::engine {

struct NewToken {
  std::string id;      // public: "tok_" + 8 hex digits
  std::string secret;  // "sluice_" + 43 base64url characters (256 random bits)
};
NewToken make_token();
// What the store keeps of a secret: its SHA-256 in hex.
std::string token_hash(std::string_view secret);

// Who is calling, once the bearer token checked out.
struct Caller {
  std::string token_id;
  registry::TokenScope scope = registry::TokenScope::Read;
  std::string workflow;  // "" = every workflow
};

// Checks an Authorization header value at time `now_ms`: 401 when it is
// missing or not "Bearer TOKEN", or the token is unknown, revoked or expired.
std::variant<Caller, ApiError> authenticate(registry::Store& store, std::string_view authorization, int64_t now_ms);

// 403 unless `caller` has at least `need` and, when it is limited to a
// workflow, `workflow` is that one. `workflow` "" means the request spans
// workflows (a limited token may not make it).
std::optional<ApiError> authorize(const Caller& caller, registry::TokenScope need, const std::string& workflow);

// Per-token request rate: a token bucket of `burst` requests refilled at
// `per_second`. Thread-safe. per_second <= 0 disables it.
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst);
  // Takes one request for `key` at steady time `now_s`; 0 when allowed,
  // else how many seconds until one is (for Retry-After).
  double take(const std::string& key, double now_s);

 private:
  struct Bucket {
    double tokens = 0;
    double at = 0;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace sluice::engine
