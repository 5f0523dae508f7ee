// API keys: "Authorization: Bearer KEY", compared in constant time so the
// response time says nothing about how much of a guess was right.
#pragma once

#include <string>
#include <string_view>

namespace strata::server {

// True when `given` equals `expected`; the time depends only on their lengths.
bool keys_equal(std::string_view given, std::string_view expected);
// Throws ApiError 401 unless `authorization` is "Bearer <key>" (or the key
// is empty: no authentication).
void check_authorization(std::string_view authorization, const std::string& key);

}  // namespace strata::server
