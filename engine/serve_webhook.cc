#include "engine/serve_webhook.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "engine/executor.h"
#include "engine/serve.h"
#include "engine/serve_api.h"

namespace sluice::engine {

namespace reg = sluice::registry;
using nlohmann::json;

namespace {

ApiError bad_signature(std::string message) { return ApiError{401, "bad_signature", std::move(message), 0}; }

std::string text_at(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return {};
    at = &(*at)[key];
  }
  return at->is_string() ? at->get<std::string>() : std::string();
}

}  // namespace

bool signature_matches(std::string_view secret, std::string_view body, std::string_view header) {
  constexpr std::string_view kPrefix = "sha256=";
  if (header.size() != kPrefix.size() + 64 || header.substr(0, kPrefix.size()) != kPrefix) return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len))
    return false;
  static const char* kHex = "0123456789abcdef";
  std::string expected;
  for (unsigned int i = 0; i < len; ++i) {
    expected += kHex[mac[i] >> 4];
    expected += kHex[mac[i] & 15];
  }
  std::string given(header.substr(kPrefix.size()));
  for (char& c : given) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Constant time: how much of a forged signature is right must not show.
  return given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

std::optional<dsl::RepoEvent> parse_github_event(const std::string& event, const json& p, std::string& error) {
  dsl::RepoEvent e;
  e.repository = text_at(p, {"repository", "full_name"});
  e.sender = text_at(p, {"sender", "login"});
  if (e.repository.empty()) {
    error = "the " + event + " payload has no repository.full_name";
    return std::nullopt;
  }
  if (event == "push") {
    e.kind = dsl::TriggerEvent::Push;
    e.ref = text_at(p, {"ref"});
    e.sha = text_at(p, {"after"});
    e.deleted = p.is_object() && p.value("deleted", false);
    if (e.sender.empty()) e.sender = text_at(p, {"pusher", "name"});
    if (e.ref.rfind("refs/heads/", 0) == 0) e.branch = e.ref.substr(11);
    else if (e.ref.rfind("refs/tags/", 0) == 0) e.tag = e.ref.substr(10);
    else {
      error = "the push payload's ref '" + e.ref + "' is neither refs/heads/... nor refs/tags/...";
      return std::nullopt;
    }
    return e;
  }
  e.kind = dsl::TriggerEvent::Release;
  e.action = text_at(p, {"action"});
  e.tag = text_at(p, {"release", "tag_name"});
  if (e.action.empty() || e.tag.empty()) {
    error = "the release payload needs 'action' and 'release.tag_name'";
    return std::nullopt;
  }
  return e;
}

void github_hook(Call& call) {
  ServeContext& ctx = call.ctx;
  if (ctx.opt.webhook_secret.empty())
    throw ApiError{404, "not_found",
                   "webhooks are not enabled on this server: start it with --webhook-secret-file FILE", 0};
  const std::string sig = call.req.get_header_value("X-Hub-Signature-256");
  if (sig.empty()) {
    if (call.req.has_header("X-Hub-Signature"))
      throw bad_signature("X-Hub-Signature (HMAC-SHA1) is not accepted: sluice verifies X-Hub-Signature-256");
    throw bad_signature("missing X-Hub-Signature-256: give the webhook a secret in GitHub");
  }
  if (!signature_matches(ctx.opt.webhook_secret, call.body, sig))
    throw bad_signature("X-Hub-Signature-256 does not match the body: check the webhook's secret");

  const std::string event = call.req.get_header_value("X-GitHub-Event");
  const std::string delivery = call.req.get_header_value("X-GitHub-Delivery");
  if (event.empty() || delivery.empty() || delivery.size() > 200)
    throw ApiError{400, "bad_request", "a GitHub delivery needs X-GitHub-Event and X-GitHub-Delivery headers", 0};

  std::lock_guard<std::mutex> turn(ctx.key_lock("delivery\n" + delivery));
  {
    auto store = ctx.pool.lease();
    if (auto seen = store->delivery(delivery)) {
      json first = json::parse(seen->response, nullptr, false);
      if (first.is_discarded()) first = json::object();
      first["duplicate"] = true;
      call.json(200, first);
      return;
    }
  }
  json out = {{"delivery", delivery}, {"event", event}, {"duplicate", false}, {"runs", json::array()}};
  const int64_t now = reg::now_ms();
  std::vector<reg::Write> writes;
  if (event == "push" || event == "release") {
    json payload = json::parse(call.body, nullptr, false);
    if (payload.is_discarded() || !payload.is_object())
      throw ApiError{400, "bad_request", "the " + event + " payload is not a JSON object", 0};
    std::string error;
    std::optional<dsl::RepoEvent> e = parse_github_event(event, payload, error);
    if (!e) throw ApiError{400, "bad_request", error, 0};
    auto cat = ctx.catalog();
    for (const auto& [name, w] : cat->workflows) {
      for (size_t i = 0; i < w.wf->triggers.size(); ++i) {
        const dsl::EventTrigger& t = w.wf->triggers[i];
        if (!dsl::trigger_matches(t, *e)) continue;
        dsl::ParamValues params = dsl::default_params(*w.wf);
        for (auto& [param, value] : dsl::trigger_params(t, *e)) {
          dsl::Value typed;
          std::string why;
          // The checker made sure each value fits; widening (1 -> 1.0) happens here.
          if (const dsl::Param* decl = w.wf->find_param(param); decl && dsl::coerce_param_value(*decl, value, typed, why))
            params[param] = std::move(typed);
        }
        const std::string run_id = new_run_id();
        std::vector<reg::Write> run = queued_run_writes(w, params, reg::Trigger::Webhook, run_id, now);
        writes.insert(writes.end(), run.begin(), run.end());
        out["runs"].push_back({{"workflow", name}, {"trigger", i}, {"run_id", run_id}, {"url", run_url(call.base_url(), run_id)}});
      }
    }
  } else if (event != "ping") {
    out["ignored"] = "event '" + event + "' starts no runs: triggers take push and release";
  }
  writes.push_back(reg::PutDelivery{.id = delivery, .event = event, .response = out.dump(), .at = now});
  ctx.writer.apply(std::move(writes));
  if (!out["runs"].empty()) ctx.queue.notify();
  call.json(out["runs"].empty() ? 200 : 202, out);
}

}  // namespace sluice::engine
