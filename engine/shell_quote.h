#pragma once
// Shell-safe substitution of `${...}` references into `run` commands, which
// run as `/bin/sh -c COMMAND`. A substituted value is always data: it can never
// end a quote, start a command, expand a variable or run a substitution,
// whatever quoting context the workflow author wrote the reference in.
#include <functional>
#include <string>
#include <string_view>

#include "dsl/template.h"

namespace sluice::engine {

// Looks up one reference's text at dispatch time; false + `error` to fail the render.
using RefLookup = std::function<bool(const dsl::Ref& ref, std::string& value, std::string& error)>;

// Renders a command template for /bin/sh. The literal parts are lexed in order
// (quotes, backslashes, `$(...)`, backquotes, comments, here-documents) and each
// reference becomes lookup(ref)'s text quoted for the context it stands in:
//   - unquoted (also at the top of `$(...)` and backquotes): 'value', with each
//     ' written as '\'' (shell_quote below);
//   - inside '...': the value with each ' written as '\'' (close, escaped quote, reopen);
//   - inside "...": a backslash before each $ ` " and backslash;
//   - inside a comment: the value with newlines made spaces (it stays a comment);
//   - inside an arithmetic expansion `$((...))`: the value as it is, which must
//     be a decimal integer (quotes are not allowed there, and a name or an
//     expression would be evaluated);
//   - inside backquotes, the above plus one more backslash layer per backquote level.
// So `printf %s ${params.x}`, `printf %s '${params.x}'` and `printf %s "${params.x}"`
// all print the value exactly.
// Fails (false + error naming the reference) where no quoting is safe:
//   - in a here-document body or delimiter (`<<EOF`): pass the value as an argument
//     or an environment variable instead;
//   - right after an unescaped backslash (`\${x}`) or `$` (`$$${x}`, which the shell
//     would read as `$'...'` or `$name`);
//   - inside a shell parameter expansion written as `$${VAR:-...}`, whose quoting
//     rules differ between shells (a `$(...)` inside it is fine);
//   - a value containing a NUL byte (cannot be part of a command line);
//   - when lookup fails.
// Limits of the lexer (POSIX sh as dash implements it):
//   - inside `$(...)`, `case` ... `esac` is recognised at command position so a
//     pattern's `)` does not end the substitution; other reserved-word tricks are not;
//   - bash-only syntax (`$'...'`, `<<<`, `[[ ]]`, process substitution) is not modelled.
bool render_command(const dsl::Template& t, const RefLookup& lookup, std::string& out, std::string& error);

// `value` as one single-quoted shell word: 'it'\''s' for it's; '' for empty.
std::string shell_quote(std::string_view value);

}  // namespace sluice::engine
