#include "engine/shell_quote.h"

#include <cctype>
#include <deque>
#include <vector>

namespace sluice::engine {

std::string shell_quote(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '\'';
  for (char c : value) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

namespace {

// AnsiC is bash's $'...' (dash reads it as $ and '...'; both end it at the
// same quote unless it holds \').
enum class Quote { None, Single, Double, AnsiC };

struct Heredoc {
  std::string delim;
  bool strip_tabs = false;
  bool quoted = false;  // part of the delimiter was quoted: the body is not expanded, lines are not joined
};

// The lexing state of one parsing level of the shell: the command itself, the
// inside of a `$(...)`, of a backquoted command, or of a `${...}` parameter
// expansion written in the literal text (as `$${`). A backquoted level also
// unescapes its raw text (\\ \` \$, and \" when opened inside "...") before the
// text is lexed, as the shell does.
struct Level {
  enum class Kind { Top, Paren, Backtick, Brace };
  Kind kind = Kind::Top;
  bool parent_double = false;  // Backtick, Brace: opened inside "..."
  bool fresh = true;           // Paren: nothing lexed yet (a first '(' makes it `$((`)
  bool arithmetic = false;     // Paren: an arithmetic expansion `$((...))`
  bool bt_backslash = false;   // Backtick: a raw backslash waits for the next char

  Quote quote = Quote::None;
  bool escape = false;         // an unescaped backslash waits for its char (not in Single)
  bool dollar = false;         // the last char was an unescaped $ (not in Single)
  bool comment = false;
  bool word_start = true;      // the next char starts a word
  bool command_start = true;   // the next word is in command position
  bool word_is_command = false;
  bool word_plain = true;      // the current word has only unquoted plain chars
  std::string word;
  int parens = 0;              // unquoted ( nesting inside this level
  int cases = 0;               // open `case` ... `esac`
  int lt = 0;                  // consecutive unquoted '<'

  // Here-documents: the operator and delimiter being read, the bodies queued
  // for after the current line, and the body being skipped.
  enum class Delim { No, Operator, Blank, Word };
  Delim delim_state = Delim::No;
  std::string delim;
  bool delim_strip = false;
  Quote delim_quote = Quote::None;
  bool delim_escape = false;
  bool delim_quoted = false;
  std::deque<Heredoc> pending;
  bool in_body = false;
  std::string body_line;
};

// A decimal integer, optionally negative: all an arithmetic expansion may take.
bool is_integer(std::string_view v) {
  if (!v.empty() && v.front() == '-') v.remove_prefix(1);
  if (v.empty() || v.size() > 19) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_operator(char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>'; }
bool is_plain(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '!' || c == '{' || c == '}'; }

// Words after which the next word is again in command position.
bool leads_command(const std::string& w) {
  return w == "then" || w == "do" || w == "else" || w == "elif" || w == "if" || w == "while" || w == "until" ||
         w == "!" || w == "{";
}

class Lexer {
 public:
  void feed(std::string_view text) {
    for (char c : text) deliver(1, c);
  }

  // `value` as it must be written at the current point, or why it cannot be.
  bool quote(std::string_view value, std::string& out, std::string& error) const {
    for (const Level& l : levels_) {
      if (l.kind == Level::Kind::Backtick && l.bt_backslash) {
        error = "stands right after a backslash; write $$ for a literal $ or remove the backslash";
        return false;
      }
    }
    const Level& l = levels_.back();
    if (l.kind == Level::Kind::Brace) {
      error = "stands inside a shell ${...} expansion, where shells differ in how they read quotes; "
              "assign it to a shell variable first";
      return false;
    }
    if (ambiguous_) {
      error = "follows a $'...' string holding \\', which shells end at different quotes; "
              "avoid \\' in $'...' or pass the value in `env`";
      return false;
    }
    if (l.quote == Quote::AnsiC) {
      error = "stands in a $'...' string, which only some shells have; use '...' or \"...\" instead";
      return false;
    }
    if (l.in_body) {
      error = "stands in a here-document, where it cannot be quoted safely; pass it as an argument or in `env`";
      return false;
    }
    if (l.delim_state != Level::Delim::No) {
      error = "stands in a here-document delimiter, where it cannot be quoted safely";
      return false;
    }
    std::string text;
    if (l.kind == Level::Kind::Paren && l.arithmetic) {
      if (!is_integer(value)) {
        error = "stands in an arithmetic expansion $((...)), where only an integer can be substituted, not '" +
                std::string(value) + "'";
        return false;
      }
      text = value;
    } else if (l.comment) {
      for (char c : value) text += c == '\n' ? ' ' : c;
    } else if (l.quote == Quote::Single) {
      for (char c : value) {
        if (c == '\'')
          text += "'\\''";
        else
          text += c;
      }
    } else {
      if (l.escape) {
        error = "stands right after a backslash; write $$ for a literal $ or remove the backslash";
        return false;
      }
      if (l.dollar) {
        error = "stands right after a '$', which the shell would join with the value; write $$$$ for a literal $";
        return false;
      }
      if (l.quote == Quote::None) {
        text = shell_quote(value);
      } else {
        for (char c : value) {
          if (c == '$' || c == '`' || c == '"' || c == '\\') text += '\\';
          text += c;
        }
      }
    }
    // One backslash layer per enclosing backquote, innermost first.
    for (size_t i = levels_.size(); i-- > 1;) {
      const Level& b = levels_[i];
      if (b.kind != Level::Kind::Backtick) continue;
      std::string esc;
      for (char c : text) {
        if (c == '\\' || c == '`' || c == '$' || (c == '"' && b.parent_double)) esc += '\\';
        esc += c;
      }
      text = std::move(esc);
    }
    out += text;
    return true;
  }

  // A substituted value is part of the current word.
  void after_ref() {
    Level& l = levels_.back();
    l.fresh = false;
    if (l.comment || l.quote == Quote::Single) return;
    mark_word(l);
    l.lt = 0;
  }

 private:
  // Passes raw char `c` through the backquote levels from index `from` on, then
  // lexes what comes out in the innermost level.
  void deliver(size_t from, char c) {
    size_t j = from;
    while (j < levels_.size() && levels_[j].kind != Level::Kind::Backtick) ++j;
    if (j >= levels_.size()) {
      lex(c);
      return;
    }
    Level& b = levels_[j];
    if (b.bt_backslash) {
      b.bt_backslash = false;
      if (c == '$' || c == '`' || c == '\\' || (c == '"' && b.parent_double)) {
        deliver(j + 1, c);
      } else {
        deliver(j + 1, '\\');
        deliver(j + 1, c);
      }
    } else if (c == '\\') {
      b.bt_backslash = true;
    } else if (c == '`') {
      levels_.resize(j);  // the backquoted command ends, with whatever it held
      mark_word(levels_.back());
    } else {
      deliver(j + 1, c);
    }
  }

  static void mark_word(Level& l) {
    if (l.word_start) l.word_is_command = l.command_start;
    l.word_start = false;
    l.word_plain = false;
  }

  static void end_word(Level& l) {
    if (!l.word_start) {
      bool keyword = l.word_plain && l.word_is_command;
      if (keyword && l.word == "case") {
        ++l.cases;
        l.command_start = false;
      } else if (keyword && l.word == "esac" && l.cases > 0) {
        --l.cases;
        l.command_start = false;
      } else {
        l.command_start = keyword && leads_command(l.word);
      }
    }
    l.word.clear();
    l.word_plain = true;
    l.word_start = true;
  }

  void push(Level::Kind kind, bool parent_double) {
    Level l;
    l.kind = kind;
    l.parent_double = parent_double;
    levels_.push_back(std::move(l));
  }

  void lex(char c) {
    Level& l = levels_.back();
    if (l.kind == Level::Kind::Brace) {
      brace(l, c);
      return;
    }
    if (l.kind == Level::Kind::Paren && l.fresh) {
      l.fresh = false;
      l.arithmetic = c == '(';
    }
    if (l.in_body) {
      body(l, c);
      return;
    }
    if (l.comment) {
      if (c != '\n') return;
      l.comment = false;
    }
    if (l.delim_state != Level::Delim::No && delimiter(l, c)) return;
    switch (l.quote) {
      case Quote::Single:
        if (c == '\'') l.quote = Quote::None;
        return;
      case Quote::AnsiC:
        if (l.escape) {
          l.escape = false;
          if (c == '\'') ambiguous_ = true;
        } else if (c == '\\') {
          l.escape = true;
        } else if (c == '\'') {
          l.quote = Quote::None;
        }
        return;
      case Quote::Double:
        if (l.escape) {
          l.escape = false;
          return;
        }
        if (l.dollar) {
          l.dollar = false;
          if (c == '(' || c == '{') {
            push(c == '(' ? Level::Kind::Paren : Level::Kind::Brace, true);
            return;
          }
        }
        if (c == '\\')
          l.escape = true;
        else if (c == '"')
          l.quote = Quote::None;
        else if (c == '`')
          push(Level::Kind::Backtick, true);
        else if (c == '$')
          l.dollar = true;
        return;
      case Quote::None:
        unquoted(l, c);
        return;
    }
  }

  void unquoted(Level& l, char c) {
    if (l.escape) {  // `\` + newline joins lines; any other escaped char is a word char
      l.escape = false;
      if (c != '\n') mark_word(l);
      return;
    }
    const bool was_dollar = l.dollar;
    l.dollar = false;
    if (c != '<') l.lt = 0;
    if (was_dollar && (c == '(' || c == '{')) {
      mark_word(l);
      push(c == '(' ? Level::Kind::Paren : Level::Kind::Brace, false);  // `l` is not used after this
      return;
    }
    if (was_dollar && c == '\'') {
      l.quote = Quote::AnsiC;
      return;
    }
    if (c == '\\') {  // decided by the next char: a line continuation does not start a word
      l.escape = true;
      return;
    }
    if (c == '#' && l.word_start) {
      l.comment = true;
      return;
    }
    if (is_blank(c)) {
      end_word(l);
      return;
    }
    if (c == '\n') {
      end_word(l);
      l.command_start = true;
      if (!l.pending.empty()) l.in_body = true;
      return;
    }
    if (is_operator(c)) {
      end_word(l);
      switch (c) {
        case '(':
          ++l.parens;
          l.command_start = true;
          break;
        case ')':
          if (l.parens > 0) {
            --l.parens;
          } else if (l.cases > 0) {
            l.command_start = true;  // the end of a case pattern
          } else if (l.kind == Level::Kind::Paren) {
            levels_.pop_back();  // `l` dies here
            mark_word(levels_.back());
            return;
          }
          break;
        case '<':
          if (++l.lt == 2) {
            l.delim_state = Level::Delim::Operator;
            l.delim.clear();
            l.delim_strip = false;
            l.delim_quote = Quote::None;
            l.delim_escape = false;
            l.delim_quoted = false;
          }
          break;
        default:  // ; & | >
          l.command_start = c != '>';
          break;
      }
      return;
    }
    // A word character (possibly the start of a quote or substitution).
    if (l.word_start) {
      l.word_is_command = l.command_start;
      l.word_start = false;
    }
    switch (c) {
      case '\'':
        l.quote = Quote::Single;
        l.word_plain = false;
        break;
      case '"':
        l.quote = Quote::Double;
        l.word_plain = false;
        break;
      case '`':
        l.word_plain = false;
        push(Level::Kind::Backtick, false);
        break;
      case '$':
        l.dollar = true;
        l.word_plain = false;
        break;
      default:
        if (is_plain(c))
          l.word += c;
        else
          l.word_plain = false;
        break;
    }
  }

  // Inside `${...}`: quotes, escapes and substitutions hide a `}`, the first
  // other `}` ends it (as dash reads it; inside "${...}" single quotes are plain
  // characters). No comments or here-documents start in it.
  void brace(Level& l, char c) {
    if (l.escape) {
      l.escape = false;
      return;
    }
    if (l.quote == Quote::Single) {
      if (c == '\'') l.quote = Quote::None;
      return;
    }
    const bool was_dollar = l.dollar;
    l.dollar = false;
    if (was_dollar && (c == '(' || c == '{')) {
      const bool dq = l.parent_double || l.quote == Quote::Double;
      push(c == '(' ? Level::Kind::Paren : Level::Kind::Brace, dq);  // `l` is not used after this
      return;
    }
    switch (c) {
      case '\\':
        l.escape = true;
        break;
      case '$':
        l.dollar = true;
        break;
      case '`':
        push(Level::Kind::Backtick, l.parent_double || l.quote == Quote::Double);  // `l` is not used after this
        break;
      case '"':
        l.quote = l.quote == Quote::Double ? Quote::None : Quote::Double;
        break;
      case '\'':
        if (!l.parent_double && l.quote == Quote::None) l.quote = Quote::Single;
        break;
      case '}':
        if (l.quote == Quote::None) {
          levels_.pop_back();  // `l` dies here
          mark_word(levels_.back());
        }
        break;
      default:
        break;
    }
  }

  // Reads a here-document operator's `-` and delimiter word. True when `c` was
  // consumed; false when the delimiter ended and `c` must be lexed as usual.
  static bool delimiter(Level& l, char c) {
    switch (l.delim_state) {
      case Level::Delim::No:
        return false;
      case Level::Delim::Operator:
        if (c == '<') {  // `<<<`: a bash here-string, not a here-document
          l.delim_state = Level::Delim::No;
          l.lt = 0;
          return true;
        }
        l.delim_state = Level::Delim::Blank;
        if (c == '-') {
          l.delim_strip = true;
          return true;
        }
        [[fallthrough]];
      case Level::Delim::Blank:
        if (is_blank(c)) return true;
        if (c == '\n' || is_operator(c)) {  // no word: a syntax error for the shell
          l.delim_state = Level::Delim::No;
          return false;
        }
        l.delim_state = Level::Delim::Word;
        [[fallthrough]];
      case Level::Delim::Word:
        if (l.delim_escape) {
          l.delim_escape = false;
          l.delim += c;
          return true;
        }
        if (c == '\\' || c == '\'' || c == '"') l.delim_quoted = true;
        if (l.delim_quote == Quote::Single) {
          if (c == '\'')
            l.delim_quote = Quote::None;
          else
            l.delim += c;
          return true;
        }
        if (l.delim_quote == Quote::Double) {
          if (c == '"')
            l.delim_quote = Quote::None;
          else if (c == '\\')
            l.delim_escape = true;
          else
            l.delim += c;
          return true;
        }
        if (c == '\\') {
          l.delim_escape = true;
        } else if (c == '\'') {
          l.delim_quote = Quote::Single;
        } else if (c == '"') {
          l.delim_quote = Quote::Double;
        } else if (is_blank(c) || c == '\n' || is_operator(c)) {
          l.pending.push_back(Heredoc{l.delim, l.delim_strip, l.delim_quoted});
          l.delim_state = Level::Delim::No;
          l.lt = 0;
          return false;
        } else {
          l.delim += c;
        }
        return true;
    }
    return false;
  }

  static void body(Level& l, char c) {
    if (c != '\n') {
      l.body_line += c;
      return;
    }
    const Heredoc& h = l.pending.front();
    if (!h.quoted) {  // an odd number of trailing backslashes joins the next line to this one
      size_t n = 0;
      while (n < l.body_line.size() && l.body_line[l.body_line.size() - 1 - n] == '\\') ++n;
      if (n % 2 == 1) {
        l.body_line.pop_back();
        return;
      }
    }
    std::string_view line = l.body_line;
    if (h.strip_tabs)
      while (!line.empty() && line.front() == '\t') line.remove_prefix(1);
    if (line == h.delim) {
      l.pending.pop_front();
      if (l.pending.empty()) l.in_body = false;
    }
    l.body_line.clear();
  }

  std::vector<Level> levels_{Level{}};
  bool ambiguous_ = false;  // a $'...' held \': dash and bash disagree on where it ended
};

}  // namespace

bool render_command(const dsl::Template& t, const RefLookup& lookup, std::string& out, std::string& error) {
  out.clear();
  Lexer lexer;
  for (const dsl::TemplatePart& part : t.parts) {
    if (!part.is_ref) {
      out += part.literal;
      lexer.feed(part.literal);
      continue;
    }
    std::string value;
    std::string why;
    if (!lookup(part.ref, value, why)) {
      error = why;
      return false;
    }
    if (value.find('\0') != std::string::npos) {
      error = part.ref.text + ": the value contains a NUL byte, which cannot be part of a command";
      return false;
    }
    if (!lexer.quote(value, out, why)) {
      error = part.ref.text + " " + why;
      return false;
    }
    lexer.after_ref();
  }
  return true;
}

}  // namespace sluice::engine
