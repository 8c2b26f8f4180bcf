// TOML++'s implementation, compiled here with our optimisation flags and
// NDEBUG: Debian's shared libtomlplusplus keeps its internal assertions and
// parses large workflows about 40% slower (bench/README.md).
// TOML++ asserts on some malformed input ("[=steps.a]") instead of reporting
// it; the parser's errors are what users must see, in every build type.
#ifndef NDEBUG
#define NDEBUG
#endif
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
