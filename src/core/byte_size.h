// Forwarding header: parse_byte_size / format_bytes is public API, in include/strata/byte_size.h.
#pragma once

#include "strata/byte_size.h"
