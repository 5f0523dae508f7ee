// Streaming SHA-256 / SHA-1 (OpenSSL's libcrypto) for verifying downloads:
// LFS files are named by their sha256, small files by their git blob sha1
// (sha1 of "blob <size>\0" + content), so both can be checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace strata::hub {

class Digest {
 public:
  enum class Kind { sha256, git_blob_sha1 };
  // For git_blob_sha1 the content size must be known up front (it is hashed first).
  explicit Digest(Kind kind, uint64_t content_size = 0);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t size);
  // Lower-case hex of the digest; the object cannot be updated afterwards.
  std::string hex();
  // Starts over (same kind and size).
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hashes the first `bytes` bytes of a file into `d`; throws Error naming the file.
void digest_file_prefix(Digest& d, const std::filesystem::path& file, uint64_t bytes);

}  // namespace strata::hub
