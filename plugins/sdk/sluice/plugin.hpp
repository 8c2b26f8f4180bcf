/*
 * A header-only C++17 convenience layer over the C ABI in sluice/plugin.h:
 * a Host wrapper for the callback table, exceptions for failure statuses,
 * and sluice::plugin::invoke(), which runs an action function and keeps
 * every exception on the plugin's side of the ABI. See docs/plugins.md,
 * "Native plugins".
 *
 *   std::string run(sluice::plugin::Host& host, std::string_view action, std::string_view args_json);
 *   static int invoke(const char* a, const char* args, const sluice_host_api* api, void* h, char** v, char** e) {
 *     return sluice::plugin::invoke(run, a, args, api, h, v, e);
 *   }
 */
#ifndef SLUICE_PLUGIN_HPP
#define SLUICE_PLUGIN_HPP

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sluice/plugin.h"

namespace sluice::plugin {

/* Thrown by an action to end with a status other than SLUICE_OK; what() is
 * the one-line error the step shows. */
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

struct Failed : Error {
  explicit Failed(const std::string& message) : Error(SLUICE_FAILED, message) {}
};
struct BadArgs : Error {
  explicit BadArgs(const std::string& message) : Error(SLUICE_BAD_ARGS, message) {}
};
struct Cancelled : Error {
  Cancelled() : Error(SLUICE_CANCELLED, "cancelled") {}
};

/* The callback table of one invoke(); valid during that call, on its thread. */
class Host {
 public:
  Host(const sluice_host_api* api, void* host) : api_(api), host_(host) {}

  void log(const std::string& message) const { api_->log(host_, SLUICE_LOG_INFO, message.c_str()); }
  void warn(const std::string& message) const { api_->log(host_, SLUICE_LOG_WARN, message.c_str()); }
  void error(const std::string& message) const { api_->log(host_, SLUICE_LOG_ERROR, message.c_str()); }
  void metric(const std::string& name, double value) const {
    api_->metric(host_, name.c_str(), value, SLUICE_METRIC_NO_STEP);
  }
  void metric(const std::string& name, double value, int64_t step) const {
    api_->metric(host_, name.c_str(), value, step);
  }
  void set_value(const std::string& key, const std::string& value) const {
    api_->set_value(host_, key.c_str(), value.c_str());
  }
  std::string workdir() const { return api_->workdir(host_); }
  std::optional<std::string> input(const std::string& name) const { return opt(api_->input_path(host_, name.c_str())); }
  std::optional<std::string> output(const std::string& name) const {
    return opt(api_->output_path(host_, name.c_str()));
  }
  bool cancelled() const { return api_->is_cancelled(host_) != 0; }
  /* Throws Cancelled once the step is cancelled or past its timeout. */
  void check_cancelled() const {
    if (cancelled()) throw Cancelled();
  }

  const sluice_host_api* api() const { return api_; }
  void* handle() const { return host_; }

 private:
  static std::optional<std::string> opt(const char* s) {
    return s ? std::optional<std::string>(s) : std::nullopt;
  }
  const sluice_host_api* api_;
  void* host_;
};

/* A copy of `s` for the host, which releases it with free_string below. */
inline char* copy_string(std::string_view s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

/* Use as sluice_plugin::free_string with the strings copy_string makes. */
inline void free_string(char* s) { std::free(s); }

/* Calls `fn(host, action, args_json)`, which returns the values as a JSON
 * object text ("" for none). Error exceptions become their status and
 * message, other exceptions SLUICE_FAILED with what(). Never throws. */
template <class Fn>
int invoke(Fn&& fn, const char* action, const char* args_json, const sluice_host_api* api, void* host,
           char** values_json, char** error) noexcept {
  try {
    Host h(api, host);
    std::string values = fn(h, std::string_view(action ? action : ""), std::string_view(args_json ? args_json : ""));
    if (!values.empty()) *values_json = copy_string(values);
    return SLUICE_OK;
  } catch (const Error& e) {
    *error = copy_string(e.what());
    return e.status();
  } catch (const std::exception& e) {
    *error = copy_string(e.what());
    return SLUICE_FAILED;
  } catch (...) {
    *error = copy_string("unknown exception");
    return SLUICE_FAILED;
  }
}

}  // namespace sluice::plugin

#endif /* SLUICE_PLUGIN_HPP */
