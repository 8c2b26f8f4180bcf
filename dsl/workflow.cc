#include "dsl/spec.h"

#include <algorithm>

namespace sluice::dsl {

const Step* Workflow::find_step(std::string_view n) const {
  auto it = std::find_if(steps.begin(), steps.end(), [&](const Step& s) { return s.name == n; });
  return it == steps.end() ? nullptr : &*it;
}

const Param* Workflow::find_param(std::string_view n) const {
  // params are sorted by name (TOML++ tables are ordered).
  auto it = std::lower_bound(params.begin(), params.end(), n, [](const Param& p, std::string_view v) { return p.name < v; });
  return (it != params.end() && it->name == n) ? &*it : nullptr;
}

int64_t Workflow::step_index(std::string_view n) const {
  const Step* s = find_step(n);
  return s ? s - steps.data() : -1;
}

}  // namespace sluice::dsl
