#include "plugins/support/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "dsl/units.h"

namespace sluice::plugins {

namespace {

constexpr size_t kMaxCollected = 1 << 20;

struct State {
  const HttpRequest* request;
  const sluice::plugin::Host* host;
  HttpResponse* response;
};

size_t on_write(char* data, size_t size, size_t n, void* ud) {
  auto* s = static_cast<State*>(ud);
  const size_t len = size * n;
  if (s->request->max_size && s->response->bytes + len > s->request->max_size) {
    s->response->too_big = true;
    return 0;  // aborts the transfer
  }
  s->response->bytes += len;
  if (s->request->on_body) {
    if (!s->request->on_body(data, len)) {
      s->response->aborted = true;
      return 0;
    }
  } else if (s->response->body.size() < kMaxCollected) {
    s->response->body.append(data, std::min(len, kMaxCollected - s->response->body.size()));
  }
  return len;
}

int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* s = static_cast<State*>(ud);
  if (s->host->cancelled()) {
    s->response->cancelled = true;
    return 1;
  }
  return 0;
}

struct Easy {
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  FILE* upload = nullptr;
  ~Easy() {
    if (upload) std::fclose(upload);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  }
};

}  // namespace

HttpResponse http_perform(const HttpRequest& request, const sluice::plugin::Host& host) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResponse r;
  Easy e;
  if (!e.curl) {
    r.error = "cannot set up libcurl";
    return r;
  }
  for (const auto& h : request.headers) {
    if (h.find_first_of("\r\n") != std::string::npos) {
      r.error = "a header contains a line break";
      return r;
    }
    if (curl_slist* next = curl_slist_append(e.headers, h.c_str())) e.headers = next;
  }
  State s{&request, &host, &r};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(e.curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e.curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e.curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e.curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e.curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.curl, CURLOPT_USERAGENT, "sluice");
  curl_easy_setopt(e.curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e.curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e.curl, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(e.curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e.curl, CURLOPT_XFERINFODATA, &s);
  if (request.timeout.count() > 0) curl_easy_setopt(e.curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  if (request.max_size) curl_easy_setopt(e.curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_size));

  if (!request.upload_path.empty()) {
    e.upload = std::fopen(request.upload_path.c_str(), "rb");
    if (!e.upload) {
      r.error = "cannot read '" + request.upload_path + "'";
      return r;
    }
    std::fseek(e.upload, 0, SEEK_END);
    const long size = std::ftell(e.upload);
    std::rewind(e.upload);
    curl_easy_setopt(e.curl, CURLOPT_UPLOAD, 1L);  // PUT with a streamed body
    curl_easy_setopt(e.curl, CURLOPT_READDATA, e.upload);
    curl_easy_setopt(e.curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (request.method != "PUT") curl_easy_setopt(e.curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    e.headers = curl_slist_append(e.headers, "Expect:");  // no 100-continue round trip
  } else if (request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(e.curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(e.curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "PUT") curl_easy_setopt(e.curl, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (request.method != "GET") {
    curl_easy_setopt(e.curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (e.headers) curl_easy_setopt(e.curl, CURLOPT_HTTPHEADER, e.headers);

  const CURLcode rc = curl_easy_perform(e.curl);
  curl_easy_getinfo(e.curl, CURLINFO_RESPONSE_CODE, &r.status);
  if (rc == CURLE_FILESIZE_EXCEEDED) r.too_big = true;  // announced by Content-Length
  if (rc == CURLE_OPERATION_TIMEDOUT) r.timed_out = true;
  if (rc != CURLE_OK && !r.too_big && !r.cancelled && !r.aborted) {
    r.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    r.status = 0;
  }
  return r;
}

bool http_transient(const HttpResponse& r) {
  if (r.cancelled || r.too_big || r.aborted) return false;
  if (!r.error.empty()) return true;
  return r.status == 408 || r.status == 429 || r.status >= 500;
}

void sleep_cancellable(std::chrono::milliseconds d, const sluice::plugin::Host& host) {
  const auto end = std::chrono::steady_clock::now() + d;
  for (;;) {
    host.check_cancelled();
    const auto left = end - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
}

HttpResponse http_with_retries(const RetryPolicy& policy, const std::string& what, const sluice::plugin::Host& host,
                               const std::function<HttpResponse()>& attempt, int& attempts) {
  const int64_t total = 1 + std::max<int64_t>(0, policy.retries);
  auto delay = policy.backoff;
  for (attempts = 1;; ++attempts) {
    HttpResponse r = attempt();
    if (r.cancelled) throw sluice::plugin::Cancelled();
    if (r.ok() || !http_transient(r) || attempts >= total) return r;
    const std::string why = r.timed_out ? "timed out" : !r.error.empty() ? r.error : "HTTP " + std::to_string(r.status);
    host.warn(what + ": " + why + ", retrying in " + dsl::format_duration(delay) + " (attempt " +
              std::to_string(attempts + 1) + " of " + std::to_string(total) + ")");
    sleep_cancellable(delay, host);
    delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::minutes(1));
  }
}

std::string http_failure(const std::string& what, const HttpResponse& r, const HttpRequest& request, int attempts) {
  std::string why;
  if (r.too_big) why = "larger than max_size " + dsl::format_size(request.max_size);
  else if (r.timed_out) why = "timed out after " + dsl::format_duration(request.timeout);
  else if (!r.error.empty()) why = r.error;
  else why = "HTTP " + std::to_string(r.status);
  if (attempts > 1) why += "; gave up after " + std::to_string(attempts) + " attempts";
  return what + ": " + why;
}

std::string url_join(const std::string& base, const std::string& name) {
  std::string out = base;
  while (!out.empty() && out.back() == '/') out.pop_back();
  size_t start = 0;
  for (;;) {
    const size_t slash = name.find('/', start);
    const std::string seg = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    char* esc = curl_easy_escape(nullptr, seg.c_str(), static_cast<int>(seg.size()));
    out += "/" + std::string(esc ? esc : seg.c_str());
    curl_free(esc);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string url_host(const std::string& url) {
  std::string host;
  if (CURLU* u = curl_url()) {
    char* part = nullptr;
    if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &part, 0) == CURLUE_OK)
      host = part;
    curl_free(part);
    curl_url_cleanup(u);
  }
  return host.empty() ? "(invalid URL)" : host;
}

}  // namespace sluice::plugins
