// The built-in `storage` plugin: fetch, put, get. Files land in their
// destination whole or not at all (support/files.h); HTTP goes through
// support/http.h with retries.
#include <memory>
#include <string>

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

struct Transfer {
  uint64_t max_size = 0;
  std::chrono::milliseconds timeout{0};
  RetryPolicy retry;
  std::vector<std::string> headers;
};

Transfer transfer_of(const Args& a, bool sized) {
  Transfer t;
  if (sized) t.max_size = a.size("max_size");
  t.timeout = a.duration("timeout");
  t.retry.retries = a.integer("retries");
  if (t.retry.retries < 0) throw BadArgs("'retries' must be 0 or more");
  t.retry.backoff = a.duration("backoff");
  for (const auto& [k, v] : a.string_table("headers")) t.headers.push_back(k + ": " + v);
  return t;
}

bool is_http(const std::string& s) {
  const std::string scheme = url_scheme(s);
  return scheme == "http" || scheme == "https";
}

void check_scheme(const std::string& arg, const std::string& value) {
  const std::string scheme = url_scheme(value);
  if (!scheme.empty() && scheme != "file" && scheme != "http" && scheme != "https")
    throw BadArgs("'" + arg + "': unsupported URL scheme '" + scheme + "' (use file://, http://, https:// or a path)");
}

// A name under a target: relative, no empty or '..' segments.
void check_name(const std::string& name) {
  bool bad = name.empty() || name.front() == '/' || name.back() == '/';
  size_t start = 0;
  while (!bad) {
    const size_t slash = name.find('/', start);
    const std::string seg = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    bad = seg.empty() || seg == "." || seg == "..";
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (bad) throw BadArgs("'name' must be a relative path without '.' or '..' parts, not '" + name + "'");
}

std::string output_path(const Host& host, const Args& a) {
  const std::string name = a.string("output");
  auto path = host.output(name);
  if (!path) throw BadArgs("the step declares no output '" + name + "' (outputs = { " + name + " = \"FILE\" })");
  return *path;
}

// Copies or downloads `source` into `out`.
CopyResult download(const std::string& source, PendingFile& out, const Transfer& t, const Host& host, int& attempts) {
  attempts = 1;
  if (!is_http(source)) return copy_into(local_path_of(source), out, t.max_size, host);

  HttpRequest req;
  req.url = source;
  req.headers = t.headers;
  req.timeout = t.timeout;
  req.max_size = t.max_size;
  std::unique_ptr<sluice::registry::Sha256> hash;
  std::string write_error;  // exceptions must not cross libcurl
  req.on_body = [&](const char* data, size_t n) {
    try {
      out.write(data, n);
    } catch (const std::exception& e) {
      write_error = e.what();
      return false;
    }
    hash->update(data, n);
    return true;
  };
  const std::string what = "GET " + source;
  HttpResponse r = http_with_retries(t.retry, what, host, [&] {
    out.reset();
    hash = std::make_unique<sluice::registry::Sha256>();
    return http_perform(req, host);
  }, attempts);
  if (!write_error.empty()) throw Failed(write_error);
  if (!r.ok()) throw Failed(http_failure(what, r, req, attempts));
  return CopyResult{hash->finish(), r.bytes};
}

std::string fetch_into(const Host& host, const Args& a, const std::string& source, const std::string& output) {
  const Transfer t = transfer_of(a, true);
  const auto expected = a.opt_string("sha256");
  PendingFile out(output);
  int attempts = 0;
  CopyResult got = download(source, out, t, host, attempts);
  if (expected) check_sha256(source, *expected, got.sha256);
  out.commit();
  host.log("stored " + std::to_string(got.bytes) + " bytes from " + source + " (sha256 " + got.sha256 + ")");
  return json{{"sha256", got.sha256}, {"bytes", got.bytes}, {"attempts", attempts}}.dump();
}

std::string fetch(const Host& host, const Args& a) {
  const std::string url = a.string("url");
  check_scheme("url", url);
  return fetch_into(host, a, url, output_path(host, a));
}

std::string get(const Host& host, const Args& a) {
  const std::string target = a.string("target"), name = a.string("name");
  check_scheme("target", target);
  check_name(name);
  const std::string source = is_http(target) ? url_join(target, name) : local_path_of(target) + "/" + name;
  json values = json::parse(fetch_into(host, a, source, output_path(host, a)));
  values["location"] = source;
  return values.dump();
}

std::string put(const Host& host, const Args& a) {
  const std::string path = a.string("path"), target = a.string("target");
  check_scheme("target", target);
  const std::string name = a.opt_string("name").value_or(base_name(path));
  check_name(name);
  const Transfer t = transfer_of(a, false);
  json values;
  if (is_http(target)) {
    auto hash = sluice::registry::sha256_file(path);
    if (!hash.ok()) throw Failed(hash.error);
    HttpRequest req;
    req.method = "PUT";
    req.url = url_join(target, name);
    req.upload_path = path;
    req.headers = t.headers;
    req.timeout = t.timeout;
    const std::string what = "PUT " + req.url;
    int attempts = 0;
    HttpResponse r = http_with_retries(t.retry, what, host, [&] { return http_perform(req, host); }, attempts);
    if (!r.ok()) throw Failed(http_failure(what, r, req, attempts));
    values = {{"location", req.url}, {"sha256", hash.hex}, {"bytes", hash.size}, {"attempts", attempts}};
  } else {
    const std::string dest = local_path_of(target) + "/" + name;
    PendingFile out(dest);
    CopyResult got = copy_into(path, out, 0, host);
    out.commit();
    values = {{"location", dest}, {"sha256", got.sha256}, {"bytes", got.bytes}, {"attempts", 1}};
  }
  host.log("stored " + path + " at " + values["location"].get<std::string>());
  return values.dump();
}

std::string run(Host& host, std::string_view action, std::string_view args_json) {
  const Args a(args_json);
  if (action == "fetch") return fetch(host, a);
  if (action == "put") return put(host, a);
  if (action == "get") return get(host, a);
  throw BadArgs("storage has no action '" + std::string(action) + "'");
}

int invoke(const char* action, const char* args, const sluice_host_api* api, void* host, char** values, char** error) {
  return sluice::plugin::invoke(run, action, args, api, host, values, error);
}

const char* const kActions[] = {"fetch", "get", "put", nullptr};
const sluice_plugin kPlugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, SLUICE_PLUGIN_NAME,
                               SLUICE_PLUGIN_VERSION,   kActions,                invoke,
                               sluice::plugin::free_string};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &kPlugin; }
