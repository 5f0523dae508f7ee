// The access token for the hub: --token / HubOptions::token, else HF_TOKEN,
// else the file huggingface_hub's `login` writes ($HF_TOKEN_PATH, else
// $HF_HOME/token, else ~/.cache/huggingface/token). Never printed or logged.
#pragma once

#include <filesystem>
#include <string>

namespace strata::hub {

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::filesystem::path hf_home();

// Empty when there is none.
std::string find_token(const std::string& explicit_token);

}  // namespace strata::hub
