// `sluice token create|list|revoke`: the bearer tokens of `sluice serve`.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "dsl/names.h"
#include "dsl/units.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/run_recorder.h"
#include "engine/serve_auth.h"
#include "engine/serve_clock.h"
#include "engine/state_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

std::string token_state(const reg::TokenRow& t, int64_t now) {
  if (t.revoked_at) return "revoked";
  if (t.expires_at && *t.expires_at <= now) return "expired";
  return "active";
}

int create(const Args& args, reg::Store& store) {
  const Command& cmd = token_command();
  if (args.positional.size() > 1) return usage_error(cmd, "unexpected argument '" + args.positional[1] + "'");
  const std::string scope_text = args.value("scope");
  if (scope_text.empty()) return usage_error(cmd, "token create needs --scope read, trigger or admin");
  auto scope = reg::parse_token_scope(scope_text);
  if (!scope) return usage_error(cmd, "unknown scope '" + scope_text + "': use read, trigger or admin");
  const std::string workflow = args.value("workflow");
  if (!workflow.empty() && !dsl::is_valid_name(workflow))
    return usage_error(cmd, "invalid workflow name '" + workflow + "': " + dsl::kNameRule);
  const int64_t now = reg::now_ms();
  std::optional<int64_t> expires;
  if (!args.value("expires").empty()) {
    dsl::Duration d{};
    std::string error;
    if (!dsl::parse_duration(args.value("expires"), d, error) || d.count() <= 0)
      return usage_error(cmd, "--expires " + args.value("expires") + ": " +
                                  (error.empty() ? std::string("must be longer than 0") : error));
    expires = now + d.count();
  }
  NewToken t = make_token();
  store.apply({reg::PutToken{.id = t.id,
                             .hash = token_hash(t.secret),
                             .scope = *scope,
                             .workflow = workflow,
                             .description = args.value("description"),
                             .at = now,
                             .expires_at = expires}});
  if (args.flag("json")) {
    nlohmann::json j = {{"id", t.id}, {"token", t.secret}, {"scope", scope_text}};
    j["workflow"] = workflow.empty() ? nlohmann::json() : nlohmann::json(workflow);
    j["expires_at"] = expires ? nlohmann::json(format_utc(*expires)) : nlohmann::json();
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s\n", t.secret.c_str());
  }
  std::fprintf(stderr, "sluice token: created %s (scope %s, %s, %s); the token is shown only this once\n",
               t.id.c_str(), scope_text.c_str(), workflow.empty() ? "every workflow" : ("workflow " + workflow).c_str(),
               expires ? ("expires " + format_utc(*expires)).c_str() : "no expiry");
  return kExitSuccess;
}

int list(const Args& args, reg::Store& store) {
  if (args.positional.size() > 1) return usage_error(token_command(), "unexpected argument '" + args.positional[1] + "'");
  const int64_t now = reg::now_ms();
  auto opt_time = [](const std::optional<int64_t>& t) { return t ? nlohmann::json(format_utc(*t)) : nlohmann::json(); };
  std::vector<reg::TokenRow> tokens = store.tokens();
  if (args.flag("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const reg::TokenRow& t : tokens)
      list.push_back({{"id", t.id},
                      {"scope", reg::to_string(t.scope)},
                      {"workflow", t.workflow.empty() ? nlohmann::json() : nlohmann::json(t.workflow)},
                      {"description", t.description},
                      {"created_at", format_utc(t.created_at)},
                      {"expires_at", opt_time(t.expires_at)},
                      {"revoked_at", opt_time(t.revoked_at)},
                      {"state", token_state(t, now)}});
    std::printf("%s\n", nlohmann::json({{"tokens", list}}).dump(2).c_str());
    return kExitSuccess;
  }
  std::printf("%-12s  %-7s  %-20s  %-20s  %-20s  %-7s  %s\n", "ID", "SCOPE", "WORKFLOW", "CREATED", "EXPIRES", "STATE",
              "DESCRIPTION");
  for (const reg::TokenRow& t : tokens)
    std::printf("%-12s  %-7s  %-20s  %-20s  %-20s  %-7s  %s\n", t.id.c_str(), reg::to_string(t.scope),
                t.workflow.empty() ? "*" : t.workflow.c_str(), format_utc(t.created_at).c_str(),
                t.expires_at ? format_utc(*t.expires_at).c_str() : "never", token_state(t, now).c_str(),
                t.description.c_str());
  return kExitSuccess;
}

int revoke(const Args& args, reg::Store& store) {
  if (args.positional.size() != 2) return usage_error(token_command(), "token revoke needs the token's ID (see 'sluice token list')");
  const std::string& id = args.positional[1];
  auto row = store.token(id);
  if (!row) {
    std::fprintf(stderr, "sluice token: error: no token '%s' in %s\n", id.c_str(), state_home(args).c_str());
    return kExitBadInput;
  }
  store.apply({reg::RevokeToken{.id = id, .at = reg::now_ms()}});
  std::fprintf(stderr, "sluice token: revoked %s\n", id.c_str());
  return kExitSuccess;
}

int run_token(const Args& args) {
  const std::string& action = args.positional[0];
  if (action != "create" && action != "list" && action != "revoke")
    return usage_error(token_command(), "unknown action '" + action + "': use create, list or revoke");
  std::unique_ptr<reg::Store> store;
  try {
    store = open_state_store(state_home(args));
  } catch (const reg::StoreError& e) {
    std::fprintf(stderr, "sluice token: error: cannot open the store in %s: %s\n", state_home(args).c_str(), e.what());
    return kExitInternal;
  }
  if (action == "create") return create(args, *store);
  if (action == "list") return list(args, *store);
  return revoke(args, *store);
}

}  // namespace

const Command& token_command() {
  static const Command cmd{
      "token",
      "create, list and revoke API tokens for 'sluice serve'",
      "sluice token create --scope read|trigger|admin [--workflow NAME] [--expires DURATION] [--description TEXT]\n"
      "       sluice token list [--json]\n"
      "       sluice token revoke ID",
      "A token is printed once, by 'create'; the store keeps only its SHA-256.\n"
      "Scopes: read (GET the API and /metrics), trigger (read, start and cancel runs),\n"
      "admin (everything). --workflow limits a token to one workflow's runs.\n"
      "Tokens live in the server's state folder: pass the same --home as 'sluice serve'.",
      {{"scope", 0, "SCOPE", "read, trigger or admin (create)"},
       {"workflow", 0, "NAME", "limit the token to this workflow (create)"},
       {"expires", 0, "DURATION", "the token expires after this long, e.g. 30d or 12h (create)"},
       {"description", 0, "TEXT", "what the token is for (create)"},
       {"json", 0, "", "machine-readable output"},
       {"home", 0, "DIR", "the state folder (default: $SLUICE_HOME or ./.sluice)"}},
      1,
      2,
      run_token};
  return cmd;
}

}  // namespace sluice::engine
