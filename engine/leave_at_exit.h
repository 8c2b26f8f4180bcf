#pragma once
// leave_at_exit(value): hands plain data a command is done with to the end of
// the process instead of freeing it. Freeing a 10,000-step run's records node
// by node takes tens of milliseconds (bench/cache.sh), while the OS takes the
// whole heap back at once when the process exits, which the caller is about
// to do. Only for plain data (strings, maps, records): whatever has a
// destructor with effects (threads, processes, files, database connections)
// must still be destroyed normally.
#include <type_traits>
#include <utility>

namespace sluice::engine {

template <class T>
void leave_at_exit(T&& value) {
  static_assert(!std::is_lvalue_reference_v<T>, "pass an rvalue: the value is moved away");
  (void)new std::decay_t<T>(std::move(value));  // never deleted, on purpose
}

}  // namespace sluice::engine
