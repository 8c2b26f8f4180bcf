#pragma once
// POST /hooks/github: GitHub's webhook. The body's HMAC-SHA256 under the
// server's secret must match X-Hub-Signature-256 (compared in constant
// time); push and release events start runs of the workflows whose
// [triggers] match them; a redelivery (same X-GitHub-Delivery) starts nothing
// and gets the first delivery's answer.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "dsl/triggers.h"
#include "engine/serve_http.h"

namespace sluice::engine {

void github_hook(Call& call);

// Whether `header` is "sha256=" and the hex HMAC-SHA256 of `body` under `secret`.
bool signature_matches(std::string_view secret, std::string_view body, std::string_view header);

// The event a push or release payload describes; nullopt with `error` when
// the payload lacks what it needs.
std::optional<dsl::RepoEvent> parse_github_event(const std::string& event, const nlohmann::json& payload,
                                                 std::string& error);

}  // namespace sluice::engine
