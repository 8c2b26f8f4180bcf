// sluice.http: GET and POST through libcurl, to the hosts the step may reach
// (LuaStepInput::http_hosts) and nowhere else. Redirects are not followed (a
// redirect could lead to any host); the 3xx response is returned as it is.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>

#include "engine/lua_stdlib.h"

namespace sluice::engine::lua {

namespace {

using Clock = std::chrono::steady_clock;

struct Transfer {
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t limit = 0;
  bool too_big = false;
};

size_t on_body(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  if (t->body.size() + len > t->limit) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  t->body.append(data, len);
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    t->headers.clear();  // a new response (after 100 Continue): its headers only
    return len;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return len;
  std::string name = line.substr(0, colon), value = line.substr(colon + 1);
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const size_t b = value.find_first_not_of(" \t");
  value = b == std::string::npos ? "" : value.substr(b);
  t->headers.emplace_back(std::move(name), std::move(value));
  return len;
}

struct Handles {  // freed however the call ends
  CURL* curl = curl_easy_init();
  CURLU* url = curl_url();
  curl_slist* headers = nullptr;
  ~Handles() {
    curl_slist_free_all(headers);
    curl_url_cleanup(url);
    curl_easy_cleanup(curl);
  }
};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool host_allowed(const std::vector<std::string>& allowed, const std::string& host, const std::string& port) {
  for (const std::string& entry : allowed) {
    const std::string e = lower(entry);
    if (e == host || e == host + ":" + port) return true;
  }
  return false;
}

// get(url [, opts]) / post(url, body [, opts]); opts: timeout (seconds,
// default 30, never past the step's deadline), headers (name = value).
int request(lua_State* L, const char* fn, bool post) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  StepContext& c = step_of(L, fn);
  const std::string url = luaL_checkstring(L, 1);
  size_t body_len = 0;
  const char* body = nullptr;
  if (post) {
    if (lua_type(L, 2) != LUA_TSTRING) raise(L, fn, std::string("body is a ") + luaL_typename(L, 2) + ", not a string");
    body = lua_tolstring(L, 2, &body_len);
  }
  const int opts = post ? 3 : 2;
  if (!lua_isnoneornil(L, opts) && !lua_istable(L, opts)) raise(L, fn, "options must be a table");

  Handles h;
  if (!h.curl || !h.url) raise(L, fn, "cannot set up libcurl");
  std::string scheme, host, port;
  {
    if (curl_url_set(h.url, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) raise(L, fn, "'" + url + "' is not a valid URL");
    char* part = nullptr;
    if (curl_url_get(h.url, CURLUPART_SCHEME, &part, 0) == CURLUE_OK) scheme = lower(part);
    curl_free(part);
    part = nullptr;
    if (curl_url_get(h.url, CURLUPART_HOST, &part, 0) == CURLUE_OK) host = lower(part);
    curl_free(part);
    part = nullptr;
    if (curl_url_get(h.url, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) == CURLUE_OK) port = part;
    curl_free(part);
  }
  if (scheme != "http" && scheme != "https") raise(L, fn, "'" + url + "': only http and https URLs are allowed");
  if (!host_allowed(c.in->http_hosts, host, port))
    raise(L, fn, "host '" + host + "' is not in this step's allowed hosts" +
                     (c.in->http_hosts.empty() ? std::string(" (none are allowed)") : ""));

  double timeout = 30;
  if (lua_istable(L, opts)) {
    lua_getfield(L, opts, "timeout");
    if (!lua_isnil(L, -1)) {
      timeout = luaL_checknumber(L, -1);
      if (!(timeout > 0)) raise(L, fn, "timeout must be a positive number of seconds");
    }
    lua_pop(L, 1);
    lua_getfield(L, opts, "headers");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1)) raise(L, fn, "headers must be a table of name = value");
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
          raise(L, fn, "headers must be a table of name = value (strings)");
        const std::string line = std::string(lua_tostring(L, -2)) + ": " + lua_tostring(L, -1);
        if (line.find_first_of("\r\n") != std::string::npos) raise(L, fn, "a header contains a line break");
        curl_slist* next = curl_slist_append(h.headers, line.c_str());
        if (!next) raise(L, fn, "out of memory");
        h.headers = next;
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - Clock::now()).count();
  if (left <= 0) check_limits(L);
  const bool capped = static_cast<double>(left) < timeout * 1000;  // the step's deadline comes first
  const long timeout_ms = static_cast<long>(std::max<double>(1, std::min<double>(timeout * 1000, static_cast<double>(left))));

  Transfer t;
  t.limit = static_cast<size_t>(std::min<uint64_t>(c.memory_limit, uint64_t{1} << 30));
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h.curl, CURLOPT_CURLU, h.url);
  curl_easy_setopt(h.curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h.curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h.curl, CURLOPT_USERAGENT, "sluice");
  curl_easy_setopt(h.curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h.curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h.curl, CURLOPT_HEADERDATA, &t);
  if (h.headers) curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  if (post) {
    curl_easy_setopt(h.curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_len));
  }
  const CURLcode rc = curl_easy_perform(h.curl);
  long status = 0;
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK) {
    std::string why = t.too_big ? "the response is larger than " + std::to_string(t.limit >> 20) + " MiB"
                                : (errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT && capped) raise_time_limit(L);
    raise(L, fn, std::string(post ? "POST " : "GET ") + url + " failed: " + why);
  }
  check_limits(L);

  lua_createtable(L, 0, 3);
  lua_pushinteger(L, static_cast<lua_Integer>(status));
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, t.body.data(), t.body.size());
  lua_setfield(L, -2, "body");
  lua_createtable(L, 0, static_cast<int>(t.headers.size()));
  for (const auto& [name, value] : t.headers) {  // repeated names are joined with ", "
    lua_getfield(L, -1, name.c_str());
    if (lua_isstring(L, -1)) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value.data(), value.size());
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value.data(), value.size());
    }
    lua_setfield(L, -2, name.c_str());
  }
  lua_setfield(L, -2, "headers");
  return 1;
}

int http_get(lua_State* L) { return request(L, "http.get", false); }
int http_post(lua_State* L) { return request(L, "http.post", true); }

}  // namespace

void add_http(lua_State* L) {
  lua_newtable(L);
  lua_pushcfunction(L, http_get);
  lua_setfield(L, -2, "get");
  lua_pushcfunction(L, http_post);
  lua_setfield(L, -2, "post");
  lua_setfield(L, -2, "http");
}

}  // namespace sluice::engine::lua
