#include "auth.h"

#include "api_error.h"

namespace strata::server {

bool keys_equal(std::string_view given, std::string_view expected) {
  // Every byte of `given` is read whatever matched so far; a length
  // mismatch is folded in rather than returned early.
  unsigned diff = given.size() != expected.size() ? 1u : 0u;
  for (size_t i = 0; i < given.size(); ++i) {
    unsigned char e = expected.empty() ? 0 : static_cast<unsigned char>(expected[i % expected.size()]);
    diff |= static_cast<unsigned char>(given[i]) ^ e;
  }
  return diff == 0;
}

void check_authorization(std::string_view authorization, const std::string& key) {
  if (key.empty()) return;
  constexpr std::string_view bearer = "Bearer ";
  if (authorization.empty())
    throw unauthorized("You didn't provide an API key. Provide it in an Authorization header: "
                       "'Authorization: Bearer YOUR_KEY'.");
  if (authorization.substr(0, bearer.size()) != bearer || !keys_equal(authorization.substr(bearer.size()), key))
    throw unauthorized("Incorrect API key provided.");
}

}  // namespace strata::server
