// The built-in `notify` plugin: webhook and file.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "plugins/support/args.h"
#include "plugins/support/files.h"
#include "plugins/support/http.h"
#include "registry/sha256.h"
#include "sluice/plugin.hpp"

namespace {

using namespace sluice::plugins;
using nlohmann::json;
using sluice::plugin::BadArgs;
using sluice::plugin::Failed;
using sluice::plugin::Host;

// The message: `payload` (or {}) with "text" added when given.
json message_of(const Args& a) {
  auto payload = a.table("payload");
  auto text = a.opt_string("text");
  if (!payload && !text) throw BadArgs("give 'text' or 'payload'");
  json m = payload.value_or(json::object());
  if (text) m["text"] = *text;
  return m;
}

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), mac, &len))
    throw Failed("cannot compute the HMAC signature");
  return sluice::registry::to_hex(mac, len);
}

std::string webhook(const Host& host, const Args& a) {
  HttpRequest req;
  req.method = "POST";
  req.url = a.string("url");
  req.body = message_of(a).dump();
  req.timeout = a.duration("timeout");
  req.headers.push_back("Content-Type: application/json");
  for (const auto& [k, v] : a.string_table("headers")) req.headers.push_back(k + ": " + v);
  if (auto secret = a.opt_string("secret"))
    req.headers.push_back(a.string("signature_header") + ": sha256=" + hmac_sha256_hex(*secret, req.body));
  RetryPolicy retry;
  retry.retries = a.integer("retries");
  retry.backoff = a.duration("backoff");
  // Messages name the host only: the URL itself is often the credential.
  const std::string what = "webhook to " + url_host(req.url);
  int attempts = 0;
  HttpResponse r = http_with_retries(retry, what, host, [&] { return http_perform(req, host); }, attempts);
  if (!r.ok()) throw Failed(http_failure(what, r, req, attempts));
  host.log(what + ": HTTP " + std::to_string(r.status));
  return json{{"status", r.status}, {"attempts", attempts}}.dump();
}

std::string file(const Host& host, const Args& a) {
  const std::string path = a.string("path");
  json line = message_of(a);
  line["time"] = utc_timestamp();
  append_line(path, line.dump() + "\n");
  host.log("appended a line to " + path);
  return json{{"path", path}}.dump();
}

std::string run(Host& host, std::string_view action, std::string_view args_json) {
  const Args a(args_json);
  if (action == "webhook") return webhook(host, a);
  if (action == "file") return file(host, a);
  throw BadArgs("notify has no action '" + std::string(action) + "'");
}

int invoke(const char* action, const char* args, const sluice_host_api* api, void* host, char** values, char** error) {
  return sluice::plugin::invoke(run, action, args, api, host, values, error);
}

const char* const kActions[] = {"file", "webhook", nullptr};
const sluice_plugin kPlugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, SLUICE_PLUGIN_NAME,
                               SLUICE_PLUGIN_VERSION,   kActions,                invoke,
                               sluice::plugin::free_string};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &kPlugin; }
