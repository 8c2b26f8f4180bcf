#include "plugins/trainer/xgb.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::trainer {

namespace {

thread_local const mlkit::Host* log_host = nullptr;

// "[10:21:33] ../src/learner.cc:742: Check failed: ..." -> "Check failed: ...";
// "[10:21:33] WARNING: ../src/learner.cc:767: \nParameters: ..." -> "Parameters: ...".
std::string tidy(const char* raw) {
  std::string s = raw ? raw : "";
  const size_t trace = s.find("\n\nStack trace:");
  if (trace != std::string::npos) s.resize(trace);
  if (s.size() > 10 && s[0] == '[' && s[9] == ']') s.erase(0, s.find_first_not_of(' ', 10));
  if (s.rfind("WARNING: ", 0) == 0) s.erase(0, 9);
  // A source position "path.cc:123: " (or ".h") up front.
  const size_t colon = s.find(": ");
  if (colon != std::string::npos) {
    const std::string head = s.substr(0, colon);
    const size_t dot = head.rfind('.');
    if (head.find(' ') == std::string::npos && dot != std::string::npos && head.find(':', dot) != std::string::npos)
      s.erase(0, colon + 2);
  }
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.erase(0, 1);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void on_log(const char* message) {
  if (log_host) log_host->warn("xgboost: " + tidy(message));
}

}  // namespace

void check(int rc, const std::string& what) {
  if (rc != 0) {
    std::string message = tidy(XGBGetLastError());
    const size_t nl = message.find('\n');
    if (nl != std::string::npos) message.resize(nl);
    throw mlkit::Failed(what + ": " + message);
  }
}

LogTo::LogTo(const mlkit::Host& host) : previous_(log_host) {
  log_host = &host;
  XGBRegisterLogCallback(on_log);
}

LogTo::~LogTo() { log_host = previous_; }

DMatrix::DMatrix(const mlkit::Table& table, const std::vector<size_t>& features, const std::vector<std::string>& names)
    : rows_(table.rows()) {
  const size_t cols = features.size();
  std::vector<float> data(rows_ * cols);
  for (size_t j = 0; j < cols; ++j) {
    const std::vector<double> column = table.numbers(features[j]);
    for (size_t i = 0; i < rows_; ++i) data[i * cols + j] = static_cast<float>(column[i]);
  }
  check(XGDMatrixCreateFromMat(data.data(), rows_, cols, std::numeric_limits<float>::quiet_NaN(), &h_),
        "cannot hold " + table.shown());
  std::vector<const char*> ptrs;
  for (const std::string& n : names) ptrs.push_back(n.c_str());
  check(XGDMatrixSetStrFeatureInfo(h_, "feature_name", ptrs.data(), ptrs.size()), "cannot name the features");
}

DMatrix::~DMatrix() {
  if (h_) XGDMatrixFree(h_);
}

void DMatrix::set_labels(const std::vector<double>& labels) {
  std::vector<float> f(labels.begin(), labels.end());
  check(XGDMatrixSetFloatInfo(h_, "label", f.data(), f.size()), "cannot set the labels");
}

Booster::Booster(const std::vector<DMatrixHandle>& cache) {
  check(XGBoosterCreate(cache.data(), cache.size(), &h_), "cannot create a booster");
}

Booster::~Booster() {
  if (h_) XGBoosterFree(h_);
}

void Booster::set_param(const std::string& name, const std::string& value) {
  check(XGBoosterSetParam(h_, name.c_str(), value.c_str()), "params." + name);
}

void Booster::set_attr(const std::string& key, const std::string& value) {
  check(XGBoosterSetAttr(h_, key.c_str(), value.c_str()), "cannot set attribute " + key);
}

void Booster::set_feature_names(const std::vector<std::string>& names) {
  std::vector<const char*> ptrs;
  for (const std::string& n : names) ptrs.push_back(n.c_str());
  check(XGBoosterSetStrFeatureInfo(h_, "feature_name", ptrs.data(), ptrs.size()), "cannot name the features");
}

std::vector<std::string> Booster::feature_names() const {
  bst_ulong len = 0;
  const char** out = nullptr;
  check(XGBoosterGetStrFeatureInfo(h_, "feature_name", &len, &out), "cannot read the feature names");
  return std::vector<std::string>(out, out + len);
}

size_t Booster::num_features() const {
  bst_ulong n = 0;
  check(XGBoosterGetNumFeature(h_, &n), "cannot read the feature count");
  return n;
}

std::string Booster::save_json() const {
  bst_ulong len = 0;
  const char* out = nullptr;
  check(XGBoosterSaveModelToBuffer(h_, R"({"format": "json"})", &len, &out), "cannot save the model");
  return std::string(out, len);
}

void Booster::load(const std::string& bytes, const std::string& shown) {
  check(XGBoosterLoadModelFromBuffer(h_, bytes.data(), bytes.size()), shown + " is not an XGBoost model");
}

std::vector<float> Booster::predict(const DMatrix& data, int type, std::vector<uint64_t>& shape) const {
  const std::string config = R"({"type": )" + std::to_string(type) +
                             R"(, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false})";
  const bst_ulong* out_shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  check(XGBoosterPredictFromDMatrix(h_, data.get(), config.c_str(), &out_shape, &dim, &out), "prediction failed");
  shape.assign(out_shape, out_shape + dim);
  size_t n = 1;
  for (uint64_t s : shape) n *= s;
  return std::vector<float>(out, out + n);
}

std::string format_float(float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  return std::string(buf, r.ptr);
}

}  // namespace sluice::trainer
