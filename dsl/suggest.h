#pragma once
// "Did you mean" suggestions by edit distance.
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dsl {

// Optimal-string-alignment distance (Levenshtein plus adjacent transposition).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible
// typo (distance <= max(1, (|word| + 2) / 4), and less than either length); empty otherwise. Ties go to the
// earlier candidate.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean 'X'?" or "" — appended to messages.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace sluice::dsl
