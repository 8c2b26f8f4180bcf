#include "dsl/triggers.h"

#include <algorithm>

namespace sluice::dsl {

const char* to_string(TriggerEvent e) { return e == TriggerEvent::Push ? "push" : "release"; }

const std::vector<std::string>& event_fields(TriggerEvent e) {
  static const std::vector<std::string> kPush = {"repository", "ref", "branch", "tag", "sha", "sender"};
  static const std::vector<std::string> kRelease = {"repository", "tag", "action", "sender"};
  return e == TriggerEvent::Push ? kPush : kRelease;
}

const std::vector<std::string>& release_actions() {
  static const std::vector<std::string> kActions = {"published", "unpublished", "created",  "edited",
                                                    "deleted",   "prereleased", "released"};
  return kActions;
}

bool glob_match(std::string_view p, std::string_view t) {
  // Dynamic programming over (pattern position, text position), so stars
  // never backtrack exponentially: ok[j] = the pattern so far matches t[0, j).
  std::string ok(t.size() + 1, '\0'), next(t.size() + 1, '\0');
  ok.front() = 1;
  size_t i = 0;
  while (i < p.size()) {
    next.assign(t.size() + 1, '\0');
    if (p[i] == '*') {
      const bool any = i + 1 < p.size() && p[i + 1] == '*';
      // A star extends a match over characters (not '/' for a single star).
      for (size_t j = 0; j <= t.size(); ++j)
        next[j] = ok[j] || (j > 0 && next[j - 1] && (any || t[j - 1] != '/'));
      i += any ? 2 : 1;
    } else {
      for (size_t j = 1; j <= t.size(); ++j)
        next[j] = ok[j - 1] && (p[i] == '?' ? t[j - 1] != '/' : p[i] == t[j - 1]);
      ++i;
    }
    ok.swap(next);
  }
  return ok.back() != 0;
}

namespace {

bool any_match(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return glob_match(p, name); });
}

}  // namespace

bool trigger_matches(const EventTrigger& t, const RepoEvent& e) {
  if (t.event != e.kind) return false;
  if (!t.repository.empty() && t.repository != e.repository) return false;
  if (e.kind == TriggerEvent::Push) {
    if (e.deleted) return false;
    // As GitHub Actions: no filter takes every push; a filter on one kind of
    // ref leaves the other kind out.
    if (t.branches.empty() && t.tags.empty()) return true;
    if (!e.branch.empty()) return any_match(t.branches, e.branch);
    if (!e.tag.empty()) return any_match(t.tags, e.tag);
    return false;
  }
  const std::vector<std::string> published = {"published"};
  const std::vector<std::string>& actions = t.actions.empty() ? published : t.actions;
  if (std::find(actions.begin(), actions.end(), e.action) == actions.end()) return false;
  return t.tags.empty() || any_match(t.tags, e.tag);
}

std::optional<std::string> event_field(const RepoEvent& e, std::string_view name) {
  const std::vector<std::string>& known = event_fields(e.kind);
  if (std::find(known.begin(), known.end(), name) == known.end()) return std::nullopt;
  if (name == "repository") return e.repository;
  if (name == "ref") return e.ref;
  if (name == "branch") return e.branch;
  if (name == "tag") return e.tag;
  if (name == "sha") return e.sha;
  if (name == "action") return e.action;
  return e.sender;
}

std::vector<std::pair<std::string, Value>> trigger_params(const EventTrigger& t, const RepoEvent& e) {
  std::vector<std::pair<std::string, Value>> out;
  for (const TriggerParam& p : t.params) {
    if (!p.value.is_string()) {
      out.emplace_back(p.name, p.value);
      continue;
    }
    std::string text;
    for (const EventPart& part : p.parts) text += part.is_field ? event_field(e, part.text).value_or("") : part.text;
    out.emplace_back(p.name, Value(std::move(text)));
  }
  return out;
}

}  // namespace sluice::dsl
