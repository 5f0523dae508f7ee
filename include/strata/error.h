// Errors inside the library are exceptions carrying enough context (file,
// tensor, expected vs found) for a user to act on. Boundaries (CLI, tests,
// later Python/HTTP) convert them; library code never exits or aborts.
#pragma once

#include <stdexcept>
#include <string>

namespace strata {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad arguments from the user (CLI maps this to exit status 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace strata
