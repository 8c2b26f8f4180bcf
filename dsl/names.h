#pragma once
// Naming rules shared by the reader and the checker (internal to dsl/).
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dsl {

// Workflow and step names: [a-z0-9][a-z0-9_-]*
bool is_valid_name(std::string_view s);
inline constexpr const char* kNameRule = "use lowercase letters, digits, '_' and '-', starting with a letter or digit";

// Params, inputs, outputs, matrix keys, actions: [A-Za-z_][A-Za-z0-9_]*
bool is_identifier(std::string_view s);
inline constexpr const char* kIdentifierRule = "use letters, digits and '_', not starting with a digit";

bool is_env_name(std::string_view s);
// Plugin names: one or more valid names joined by dots ("storage", "trainer.xgboost").
bool is_plugin_name(std::string_view s);
inline constexpr const char* kPluginNameRule =
    "use lowercase letters, digits, '_' and '-', starting with a letter or digit (dots may join several such names)";

// IANA zone names of this machine's tz database, for suggestions.
const std::vector<std::string>& timezone_names();

}  // namespace sluice::dsl
