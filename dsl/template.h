#pragma once
// `${...}` templates inside workflow strings. Parsing splits a string into
// literal text and references; checking against the workflow happens in the
// checker. `$$` is a literal `$`.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dsl/diagnostic.h"

namespace sluice::dsl {

struct Ref {
  enum class Kind {
    Param,       // ${params.NAME}
    Input,       // ${inputs.NAME}
    Output,      // ${outputs.NAME}
    Matrix,      // ${matrix.KEY}
    StepOutput,  // ${steps.STEP.outputs.NAME}
    StepValue,   // ${steps.STEP.values.KEY}
    RunId,       // ${run.id}
    Secret,      // ${secrets.NAME}
    Model,       // ${models.NAME@ALIAS_OR_VERSION.FIELD}
  };
  Kind kind = Kind::Param;
  std::string step;  // StepOutput, StepValue; the model name for Model
  std::string key;   // the name after the last dot; for Model the field
  std::string model_ref;  // Model only: the alias or version after '@'
  std::string text;  // the whole "${...}" as written
  SourcePos pos;     // where "${" stands in the file (0 when unknown)
};

// A literal piece or a reference, in order.
struct TemplatePart {
  bool is_ref = false;
  std::string literal;
  Ref ref;
};

struct Template {
  std::string text;  // the string as written
  std::vector<TemplatePart> parts;
  bool has_refs() const;
};

// Maps a byte offset in a string's decoded text to its position in the file.
using PosMap = std::function<SourcePos(size_t offset)>;

// Splits `text` into parts. Malformed references (unterminated `${`, an
// unknown root, a wrong number of segments) are reported to `diags` at their
// position.
Template parse_template(std::string_view text, Diagnostics& diags, const PosMap& at);

// Concatenates the parts; each reference becomes lookup(ref), or stays as
// written when lookup returns nullopt (e.g. a value only known at run time).
std::string render(const Template& t, const std::function<std::optional<std::string>(const Ref&)>& lookup);

}  // namespace sluice::dsl
