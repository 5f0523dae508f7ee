#include "core/byte_size.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace strata {

uint64_t parse_byte_size(std::string_view s) {
  std::string str(s);
  const char* begin = str.c_str();
  char* end = nullptr;
  double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value <= 0 || str.empty() || !std::isdigit((unsigned char)str[0]))
    throw UsageError("invalid size '" + str + "' (examples: 512MiB, 4GiB, 2.5GB)");
  std::string unit(end);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  for (auto& c : unit) c = char(std::tolower((unsigned char)c));
  double mult;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib") mult = 1024.0;
  else if (unit == "m" || unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb") mult = 1e3;
  else if (unit == "mb") mult = 1e6;
  else if (unit == "gb") mult = 1e9;
  else if (unit == "tb") mult = 1e12;
  else throw UsageError("invalid size unit in '" + str + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
  double bytes = value * mult;
  if (bytes >= 1.8e19) throw UsageError("size '" + str + "' is too large");
  if (bytes < 1) throw UsageError("size '" + str + "' is less than one byte");
  return uint64_t(bytes);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace strata
