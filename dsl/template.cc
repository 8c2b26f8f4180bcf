#include "dsl/template.h"

#include <algorithm>

#include "dsl/suggest.h"

namespace sluice::dsl {

bool Template::has_refs() const {
  return std::any_of(parts.begin(), parts.end(), [](const TemplatePart& p) { return p.is_ref; });
}

namespace {

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

bool is_ident(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// Interprets the inside of `${...}`; returns false and sets `error` if the
// reference is malformed.
bool classify(std::string_view body, Ref& ref, std::string& error) {
  const std::string shown = "${" + std::string(body) + "}";
  if (body.empty()) {
    error = "empty reference '${}'";
    return false;
  }
  // Models carry '@' and may carry dots in the version part only as a field
  // separator: models.NAME@REF.FIELD
  if (body.substr(0, 7) == "models.") {
    std::string_view rest = body.substr(7);
    size_t at = rest.find('@');
    size_t dot = rest.rfind('.');
    if (at == std::string_view::npos || dot == std::string_view::npos || dot < at ||
        !is_ident(rest.substr(0, at)) || !is_ident(rest.substr(at + 1, dot - at - 1)) ||
        !is_ident(rest.substr(dot + 1))) {
      error = "malformed reference '" + shown + "': expected ${models.NAME@ALIAS.path} or ${models.NAME@VERSION.path}";
      return false;
    }
    ref.kind = Ref::Kind::Model;
    ref.step = std::string(rest.substr(0, at));
    ref.model_ref = std::string(rest.substr(at + 1, dot - at - 1));
    ref.key = std::string(rest.substr(dot + 1));
    if (ref.key != "path" && ref.key != "version" && ref.key != "digest") {
      error = "unknown model field '" + ref.key + "' in '" + shown + "': expected path, version or digest";
      return false;
    }
    return true;
  }
  std::vector<std::string_view> seg = split_dots(body);
  for (std::string_view s : seg) {
    if (!is_ident(s)) {
      error = "malformed reference '" + shown + "'";
      return false;
    }
  }
  const std::string_view root = seg[0];
  struct Simple { std::string_view root; Ref::Kind kind; };
  static constexpr Simple simple[] = {{"params", Ref::Kind::Param},   {"inputs", Ref::Kind::Input},
                                      {"outputs", Ref::Kind::Output}, {"matrix", Ref::Kind::Matrix},
                                      {"secrets", Ref::Kind::Secret}};
  for (const Simple& s : simple) {
    if (root == s.root) {
      if (seg.size() != 2) {
        error = "malformed reference '" + shown + "': expected ${" + std::string(root) + ".NAME}";
        return false;
      }
      ref.kind = s.kind;
      ref.key = std::string(seg[1]);
      return true;
    }
  }
  if (root == "run") {
    if (seg.size() != 2 || seg[1] != "id") {
      error = "unknown reference '" + shown + "': the run offers ${run.id}";
      return false;
    }
    ref.kind = Ref::Kind::RunId;
    ref.key = "id";
    return true;
  }
  if (root == "steps") {
    if (seg.size() != 4 || (seg[2] != "outputs" && seg[2] != "values")) {
      error = "malformed reference '" + shown + "': expected ${steps.STEP.outputs.NAME} or ${steps.STEP.values.KEY}";
      return false;
    }
    ref.kind = seg[2] == "outputs" ? Ref::Kind::StepOutput : Ref::Kind::StepValue;
    ref.step = std::string(seg[1]);
    ref.key = std::string(seg[3]);
    return true;
  }
  static const std::vector<std::string> roots = {"params", "inputs", "outputs", "matrix", "steps", "run", "secrets", "models"};
  error = "unknown reference '" + shown +
          "': a reference starts with params, inputs, outputs, matrix, steps, run, secrets or models" +
          did_you_mean(root, roots);
  return false;
}

}  // namespace

Template parse_template(std::string_view text, Diagnostics& diags, const PosMap& at) {
  Template t;
  t.text = std::string(text);
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      literal += '$';
      i += 2;
      continue;
    }
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        diags.error("bad-template", at(i), "unterminated '${' in template: add '}' (write '$$' for a literal '$')");
        literal += text.substr(i);
        break;
      }
      TemplatePart part;
      part.is_ref = true;
      part.ref.text = std::string(text.substr(i, close + 1 - i));
      part.ref.pos = at(i);
      std::string error;
      if (!classify(text.substr(i + 2, close - i - 2), part.ref, error)) {
        diags.error("bad-template", part.ref.pos, error);
      } else {
        if (!literal.empty()) t.parts.push_back(TemplatePart{false, std::move(literal), {}});
        literal.clear();
        t.parts.push_back(std::move(part));
      }
      i = close + 1;
      continue;
    }
    literal += text[i];
    ++i;
  }
  if (!literal.empty()) t.parts.push_back(TemplatePart{false, std::move(literal), {}});
  return t;
}

std::string render(const Template& t, const std::function<std::optional<std::string>(const Ref&)>& lookup) {
  std::string out;
  for (const TemplatePart& p : t.parts) {
    if (!p.is_ref) {
      out += p.literal;
      continue;
    }
    std::optional<std::string> v = lookup(p.ref);
    out += v ? *v : p.ref.text;
  }
  return out;
}

}  // namespace sluice::dsl
