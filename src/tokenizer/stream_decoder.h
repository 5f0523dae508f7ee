// Forwarding header: the StreamDecoder is public API, in include/strata/stream_decoder.h.
#pragma once

#include "strata/stream_decoder.h"
