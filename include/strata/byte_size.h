// Human byte sizes: "512MiB", "4GiB", "2.5GB", "1000000" (bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace strata {

// Throws UsageError on anything that is not a positive size.
uint64_t parse_byte_size(std::string_view s);
// "1.50 GiB", "312.0 KiB", "17 B".
std::string format_bytes(uint64_t bytes);

}  // namespace strata
