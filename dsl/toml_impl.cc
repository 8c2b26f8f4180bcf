// TOML++'s implementation, compiled here with our optimisation flags and
// NDEBUG: Debian's shared libtomlplusplus keeps its internal assertions and
// parses large workflows about 40% slower (bench/README.md).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
