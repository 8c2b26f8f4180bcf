// `sluice trigger --server URL WORKFLOW`: the CI client of `sluice serve`
// (libcurl). Prints the run's URL; with --wait follows the run and exits
// with its result.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "dsl/params.h"
#include "engine/cli.h"
#include "engine/exit_status.h"

namespace sluice::engine {

namespace {

using nlohmann::json;

struct HttpReply {
  long status = 0;     // 0: no answer
  std::string body;
  std::string error;   // why there was no answer
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

HttpReply http(const std::string& method, const std::string& url, const std::string& token, const std::string& body,
               const std::string& idempotency_key = "") {
  HttpReply r;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  headers = curl_slist_append(headers, "Accept: application/json");
  if (method == "POST") headers = curl_slist_append(headers, "Content-Type: application/json");
  if (!idempotency_key.empty()) headers = curl_slist_append(headers, ("Idempotency-Key: " + idempotency_key).c_str());
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sluice-trigger");
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  else r.error = error[0] ? error : curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

// The server's JSON error message, or the body itself.
std::string reason(const HttpReply& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
  return r.body;
}

int fail(const HttpReply& r, const std::string& what) {
  if (r.status == 0) {
    std::fprintf(stderr, "sluice trigger: error: %s: %s\n", what.c_str(), r.error.c_str());
    return kExitInternal;
  }
  std::fprintf(stderr, "sluice trigger: error: %s: %s (HTTP %ld)\n", what.c_str(), reason(r).c_str(), r.status);
  return r.status >= 500 ? kExitInternal : kExitBadInput;
}

// `-p NAME=VALUE` typed like `sluice run` does, against the params the
// server says the workflow declares.
bool typed_params(const json& workflow, const std::vector<std::string>& overrides, json& out, std::string& error) {
  out = json::object();
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "expected -p NAME=VALUE, found '" + o + "'";
      return false;
    }
    const std::string name = o.substr(0, eq);
    const json* decl = nullptr;
    for (const json& p : workflow["params"])
      if (p["name"] == name) decl = &p;
    if (!decl) {
      error = "unknown param '" + name + "' for workflow '" + workflow["name"].get<std::string>() + "'";
      return false;
    }
    auto type_of = [](const std::string& t) {
      if (t == "integer") return dsl::ValueType::Integer;
      if (t == "float") return dsl::ValueType::Float;
      if (t == "boolean") return dsl::ValueType::Boolean;
      if (t == "array") return dsl::ValueType::Array;
      return dsl::ValueType::String;
    };
    dsl::Param p;
    p.name = name;
    p.type = type_of((*decl)["type"]);
    if (decl->contains("element")) p.element = type_of((*decl)["element"]);
    dsl::Value v;
    if (!dsl::parse_param_value(p, o.substr(eq + 1), v, error)) return false;
    out[name] = json::parse(v.to_json());
  }
  return true;
}

int run_trigger(const Args& args) {
  const Command& cmd = trigger_command();
  std::string server = args.value("server");
  if (server.empty()) return usage_error(cmd, "--server URL is required");
  while (!server.empty() && server.back() == '/') server.pop_back();
  std::string token = args.value("token");
  if (token.empty())
    if (const char* env = std::getenv("SLUICE_TOKEN")) token = env;
  if (token.empty()) return usage_error(cmd, "no token: pass --token or set $SLUICE_TOKEN");
  const std::string workflow = args.positional[0];

  curl_global_init(CURL_GLOBAL_DEFAULT);
  HttpReply wf = http("GET", server + "/api/v1/workflows/" + workflow, token, "");
  if (wf.status != 200) return fail(wf, "cannot read workflow '" + workflow + "'");
  json params;
  std::string error;
  if (!typed_params(json::parse(wf.body), args.all("param"), params, error)) {
    std::fprintf(stderr, "sluice trigger: error: -p: %s\n", error.c_str());
    return kExitBadInput;
  }
  HttpReply r = http("POST", server + "/api/v1/workflows/" + workflow + "/runs", token,
                     json({{"params", params}}).dump(), args.value("idempotency-key"));
  if (r.status != 202) return fail(r, "the server did not start a run of '" + workflow + "'");
  const json accepted = json::parse(r.body);
  const std::string url = accepted["url"];
  std::printf("%s\n", url.c_str());
  std::fflush(stdout);
  if (!args.flag("wait")) return kExitSuccess;

  std::string last;
  for (;;) {
    HttpReply run = http("GET", url, token, "");
    if (run.status != 200) return fail(run, "cannot follow the run");
    const json j = json::parse(run.body);
    const std::string status = j["status"];
    if (status != last) std::fprintf(stderr, "sluice trigger: run %s: %s\n", j["id"].get<std::string>().c_str(), status.c_str());
    last = status;
    if (status == "succeeded") return kExitSuccess;
    if (status == "failed" || status == "cancelled") {
      for (const json& s : j["steps"])
        if (s["status"] == "failed")
          std::fprintf(stderr, "sluice trigger: step %s failed: %s\n", s["node"].get<std::string>().c_str(),
                       s["error"].is_string() ? s["error"].get<std::string>().c_str() : "");
      if (j["error"].is_string()) std::fprintf(stderr, "sluice trigger: %s\n", j["error"].get<std::string>().c_str());
      return kExitRunFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

const Command& trigger_command() {
  static const Command cmd{
      "trigger",
      "start a run on a 'sluice serve' server (for CI)",
      "sluice trigger --server URL [--token TOKEN] [-p NAME=VALUE]... [--wait] WORKFLOW",
      "Prints the run's URL. The token comes from --token or $SLUICE_TOKEN and needs\n"
      "the trigger scope. -p values are typed against the workflow's params as the\n"
      "server declares them. With --wait the command follows the run and exits 0 when\n"
      "it succeeded, 1 when it failed or was cancelled. Exit status 2: the server\n"
      "refused the request (4xx); 3: no answer, or a server error.",
      {{"server", 0, "URL", "the server, e.g. http://ci-runner:8080"},
       {"token", 0, "TOKEN", "the bearer token (default: $SLUICE_TOKEN)"},
       {"param", 'p', "NAME=VALUE", "a param of the run", true},
       {"idempotency-key", 0, "KEY", "retries with the same key start one run"},
       {"wait", 0, "", "wait for the run to finish; exit 0 if it succeeded, 1 if not"}},
      1,
      1,
      run_trigger};
  return cmd;
}

}  // namespace sluice::engine
