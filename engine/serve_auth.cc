#include "engine/serve_auth.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "engine/serve_clock.h"
#include "registry/sha256.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

void random_bytes(unsigned char* out, int n) {
  if (RAND_bytes(out, n) != 1) throw std::runtime_error("the system's random generator failed");
}

std::string base64url(const unsigned char* p, size_t n) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

ApiError unauthorized(std::string message) { return ApiError{401, "unauthorized", std::move(message), 0}; }

}  // namespace

NewToken make_token() {
  unsigned char id[4], secret[32];
  random_bytes(id, sizeof id);
  random_bytes(secret, sizeof secret);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : id) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return NewToken{"tok_" + hex, "sluice_" + base64url(secret, sizeof secret)};
}

std::string token_hash(std::string_view secret) { return reg::sha256_hex(secret); }

std::variant<Caller, ApiError> authenticate(reg::Store& store, std::string_view header, int64_t now_ms) {
  if (header.empty())
    return unauthorized("missing bearer token: send 'Authorization: Bearer TOKEN' (create one with 'sluice token create')");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer)
    return unauthorized("the Authorization header must be 'Bearer TOKEN'");
  std::string_view secret = header.substr(kBearer.size());
  while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
  // Looked up by hash: the secret itself is never compared or stored.
  auto row = store.token_by_hash(token_hash(secret));
  if (!row) return unauthorized("invalid token");
  if (row->revoked_at) return unauthorized("token " + row->id + " was revoked at " + format_utc(*row->revoked_at));
  if (row->expires_at && *row->expires_at <= now_ms)
    return unauthorized("token " + row->id + " expired at " + format_utc(*row->expires_at));
  return Caller{row->id, row->scope, row->workflow};
}

std::optional<ApiError> authorize(const Caller& caller, reg::TokenScope need, const std::string& workflow) {
  if (static_cast<int>(caller.scope) < static_cast<int>(need))
    return ApiError{403, "forbidden",
                    "token " + caller.token_id + " has scope '" + reg::to_string(caller.scope) + "'; this needs '" +
                        reg::to_string(need) + "'",
                    0};
  if (!caller.workflow.empty() && caller.workflow != workflow)
    return ApiError{403, "forbidden",
                    "token " + caller.token_id + " is limited to workflow '" + caller.workflow + "'" +
                        (workflow.empty() ? std::string("; this request spans every workflow") : ""),
                    0};
  return std::nullopt;
}

RateLimiter::RateLimiter(double per_second, double burst) : rate_(per_second), burst_(std::max(1.0, burst)) {}

double RateLimiter::take(const std::string& key, double now_s) {
  if (rate_ <= 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now_s});
  Bucket& b = it->second;
  if (!fresh) b.tokens = std::min(burst_, b.tokens + (now_s - b.at) * rate_);
  b.at = now_s;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return (1 - b.tokens) / rate_;
}

}  // namespace sluice::engine
