// Forwarding header: strata::Error / UsageError is public API, in include/strata/error.h.
#pragma once

#include "strata/error.h"
