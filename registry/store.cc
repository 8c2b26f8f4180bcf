#include "registry/store.h"

#include <array>
#include <chrono>

namespace sluice::registry {
namespace {

constexpr std::array kTriggers = {"cli", "api", "schedule", "webhook", "retry", "rerun", "resume", "child"};
constexpr std::array kRunStatuses = {"queued", "running", "succeeded", "failed", "cancelled"};
constexpr std::array kStepStatuses = {"waiting", "running", "retrying", "succeeded",
                                      "cached",  "failed",  "skipped",  "cancelled"};
constexpr std::array kAttemptStatuses = {"running", "succeeded", "failed", "cancelled"};
constexpr std::array kArtifactKinds = {"file", "tree"};
constexpr std::array kTokenScopes = {"read", "trigger", "admin"};
constexpr std::array kFireOutcomes = {"queued", "skipped"};

template <class E, size_t N>
std::optional<E> parse(const std::array<const char*, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i]) return static_cast<E>(i);
  return std::nullopt;
}

}  // namespace

const char* to_string(Trigger t) { return kTriggers.at(static_cast<size_t>(t)); }
const char* to_string(RunStatus s) { return kRunStatuses.at(static_cast<size_t>(s)); }
const char* to_string(StepStatus s) { return kStepStatuses.at(static_cast<size_t>(s)); }
const char* to_string(AttemptStatus s) { return kAttemptStatuses.at(static_cast<size_t>(s)); }
const char* to_string(ArtifactKind k) { return kArtifactKinds.at(static_cast<size_t>(k)); }
const char* to_string(TokenScope s) { return kTokenScopes.at(static_cast<size_t>(s)); }
const char* to_string(FireOutcome o) { return kFireOutcomes.at(static_cast<size_t>(o)); }

std::optional<Trigger> parse_trigger(std::string_view s) { return parse<Trigger>(kTriggers, s); }
std::optional<RunStatus> parse_run_status(std::string_view s) { return parse<RunStatus>(kRunStatuses, s); }
std::optional<StepStatus> parse_step_status(std::string_view s) { return parse<StepStatus>(kStepStatuses, s); }
std::optional<AttemptStatus> parse_attempt_status(std::string_view s) {
  return parse<AttemptStatus>(kAttemptStatuses, s);
}
std::optional<ArtifactKind> parse_artifact_kind(std::string_view s) {
  return parse<ArtifactKind>(kArtifactKinds, s);
}

std::optional<TokenScope> parse_token_scope(std::string_view s) { return parse<TokenScope>(kTokenScopes, s); }
std::optional<FireOutcome> parse_fire_outcome(std::string_view s) { return parse<FireOutcome>(kFireOutcomes, s); }

bool is_final(RunStatus s) {
  return s == RunStatus::Succeeded || s == RunStatus::Failed || s == RunStatus::Cancelled;
}

bool is_final(StepStatus s) {
  switch (s) {
    case StepStatus::Succeeded:
    case StepStatus::Cached:
    case StepStatus::Failed:
    case StepStatus::Skipped:
    case StepStatus::Cancelled:
      return true;
    case StepStatus::Waiting:
    case StepStatus::Running:
    case StepStatus::Retrying:
      return false;
  }
  return false;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace sluice::registry
