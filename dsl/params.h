#pragma once
// Param values for one run: the declared defaults, overridden by `-p
// key=value` (CLI) or a JSON object (API), each typed against its declaration.
#include <map>
#include <string>
#include <string_view>

#include "dsl/spec.h"

namespace sluice::dsl {

using ParamValues = std::map<std::string, Value>;

// Every declared param at its default.
ParamValues default_params(const Workflow& wf);

// Parses `text` as a value of `param`'s type: integers, floats (an integer
// text is accepted), booleans (true/false), strings as-is, arrays as a
// comma-separated list of elements. False with `error` on a mismatch.
bool parse_param_value(const Param& param, std::string_view text, Value& out, std::string& error);

// Checks a typed value (a trigger's param in the workflow file, a JSON param
// from the API) against `param`'s declared type. An integer fits a float
// param (and becomes a float); arrays must hold the declared element type.
// False with `error` such as "param 'epochs' is an integer; found a string
// (\"ten\")".
bool coerce_param_value(const Param& param, const Value& value, Value& out, std::string& error);

// Applies one "key=value" override. Errors name the param:
// "param 'epochs' is an integer; cannot use 'abc'".
bool apply_override(const Workflow& wf, std::string_view assignment, ParamValues& values, std::string& error);

}  // namespace sluice::dsl
