#pragma once
// libxgboost's C API with owned handles: every call is checked, and a failure
// becomes mlkit::Failed carrying XGBoost's message (first line, without its
// time stamp and source position). XGBoost's own log lines (warnings) go to
// the step's log while a LogTo is alive on the thread that logs them, and are
// dropped otherwise.
#include <cstdint>
#include <string>
#include <vector>

#include <xgboost/c_api.h>

#include "plugins/mlkit/action.h"
#include "plugins/mlkit/table.h"

namespace sluice::trainer {

// Throws Failed("<what>: <XGBoost's message>") when rc is not 0.
void check(int rc, const std::string& what);

// Routes XGBoost's log callback to `host` on this thread for its lifetime.
class LogTo {
 public:
  explicit LogTo(const mlkit::Host& host);
  ~LogTo();
  LogTo(const LogTo&) = delete;
  LogTo& operator=(const LogTo&) = delete;

 private:
  const mlkit::Host* previous_;
};

class DMatrix {
 public:
  // Rows of `table` restricted to `features` (column indexes, in order) as a
  // dense float matrix; empty cells are missing values. Throws Failed for a
  // cell that is not a number.
  DMatrix(const mlkit::Table& table, const std::vector<size_t>& features, const std::vector<std::string>& names);
  ~DMatrix();
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;

  void set_labels(const std::vector<double>& labels);
  DMatrixHandle get() const { return h_; }
  size_t rows() const { return rows_; }

 private:
  DMatrixHandle h_ = nullptr;
  size_t rows_ = 0;
};

class Booster {
 public:
  // A booster to train on `cache` (the matrices it evaluates), or an empty one
  // to load a model into.
  explicit Booster(const std::vector<DMatrixHandle>& cache = {});
  explicit Booster(BoosterHandle adopt) : h_(adopt) {}
  ~Booster();
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;

  BoosterHandle get() const { return h_; }
  void set_param(const std::string& name, const std::string& value);
  void set_attr(const std::string& key, const std::string& value);
  void set_feature_names(const std::vector<std::string>& names);
  std::vector<std::string> feature_names() const;
  size_t num_features() const;

  // The model as XGBoost JSON.
  std::string save_json() const;
  // Loads a model (JSON or UBJSON bytes); throws Failed naming `shown`.
  void load(const std::string& bytes, const std::string& shown);

  // Prediction of `type` (0 values, 2 contributions): the flat output and its shape.
  std::vector<float> predict(const DMatrix& data, int type, std::vector<uint64_t>& shape) const;

 private:
  BoosterHandle h_ = nullptr;
};

// A float in its shortest round-trip form ("0.7312", "1e-05").
std::string format_float(float f);

}  // namespace sluice::trainer
