#include "hub/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace strata::hub {

struct Digest::Impl {
  Kind kind;
  uint64_t size;
  EVP_MD_CTX* ctx = nullptr;
};

Digest::Digest(Kind kind, uint64_t content_size) : impl_(std::make_unique<Impl>()) {
  impl_->kind = kind;
  impl_->size = content_size;
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx) throw Error("cannot allocate a digest context");
  reset();
}

Digest::~Digest() { EVP_MD_CTX_free(impl_->ctx); }

void Digest::reset() {
  const EVP_MD* md = impl_->kind == Kind::sha256 ? EVP_sha256() : EVP_sha1();
  if (EVP_DigestInit_ex(impl_->ctx, md, nullptr) != 1) throw Error("cannot initialize a digest");
  if (impl_->kind == Kind::git_blob_sha1) {
    std::string head = "blob " + std::to_string(impl_->size);
    update(head.c_str(), head.size() + 1);  // with the terminating NUL, as git hashes it
  }
}

void Digest::update(const void* data, size_t size) {
  if (size && EVP_DigestUpdate(impl_->ctx, data, size) != 1) throw Error("digest update failed");
}

std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md, &n) != 1) throw Error("digest final failed");
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += digits[md[i] >> 4];
    s += digits[md[i] & 15];
  }
  return s;
}

void digest_file_prefix(Digest& d, const std::filesystem::path& file, uint64_t bytes) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string() + ": cannot open: " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  while (done < bytes) {
    ssize_t n = ::read(fd, buf.data(), size_t(std::min<uint64_t>(buf.size(), bytes - done)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      throw Error(file.string() + ": read failed: " + (n == 0 ? "unexpected end of file" : std::strerror(e)));
    }
    d.update(buf.data(), size_t(n));
    done += uint64_t(n);
  }
  ::close(fd);
}

}  // namespace strata::hub
