// Forwarding header: the Tokenizer is public API, in include/strata/tokenizer.h.
#pragma once

#include "strata/tokenizer.h"
