// Forwarding header: run_bench (strata bench) is public API, in include/strata/bench.h.
#pragma once

#include "strata/bench.h"
