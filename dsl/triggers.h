#pragma once
// Repository events (a GitHub push or release) and the workflow's
// `[triggers]` that they start runs of. Pure logic: which trigger matches an
// event, and the params it gives; the webhook receiver in engine/ does the
// HTTP, the signatures and the runs.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dsl/spec.h"

namespace sluice::dsl {

// One event as the webhook receiver read it from its payload.
struct RepoEvent {
  TriggerEvent kind = TriggerEvent::Push;
  std::string repository;  // "owner/name"
  std::string ref;         // push: "refs/heads/main", "refs/tags/v1"; release: ""
  std::string branch;      // push to a branch: "main"; else ""
  std::string tag;         // push of a tag, or the release's tag; else ""
  std::string sha;         // push: the commit pushed ("after"); release: ""
  std::string action;      // release: "published", ...; push: ""
  std::string sender;      // who caused it (login)
  bool deleted = false;    // push: a branch or tag was deleted (never starts a run)
};

// "push" / "release".
const char* to_string(TriggerEvent e);
// The fields `${event.NAME}` may name in a trigger of this kind, in the
// order docs list them.
const std::vector<std::string>& event_fields(TriggerEvent e);
// The actions a release trigger may list ("published", "created", ...).
const std::vector<std::string>& release_actions();

// Glob match on a branch or tag name: `*` is any run of characters except
// '/', `**` any run including '/', `?` one character except '/'; everything
// else is literal.
bool glob_match(std::string_view pattern, std::string_view text);

// Whether `event` starts a run through `trigger` (repository, branch, tag
// and action filters; a deleting push never does).
bool trigger_matches(const EventTrigger& trigger, const RepoEvent& event);

// The value of `${event.NAME}` for `event`; nullopt for a name the event
// kind does not have.
std::optional<std::string> event_field(const RepoEvent& event, std::string_view name);

// The run's params from a matching trigger: the trigger's params with
// `${event.NAME}` substituted (`$$` is a literal `$`), as "name" -> value.
// The checker has made sure every value fits its param's type.
std::vector<std::pair<std::string, Value>> trigger_params(const EventTrigger& trigger, const RepoEvent& event);

}  // namespace sluice::dsl
