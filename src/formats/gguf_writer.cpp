#include "formats/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace strata {
namespace {

constexpr size_t kBufBytes = 8 << 20;

}  // namespace

GgufWriter::GgufWriter(std::filesystem::path out, uint64_t alignment) : out_(std::move(out)), alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) throw Error("GGUF alignment must be a power of two");
  add_u32("general.alignment", uint32_t(alignment_));
}

GgufWriter::~GgufWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !tmp_.empty()) {
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void GgufWriter::put(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  kv_.insert(kv_.end(), b, b + n);
}

void GgufWriter::put_str(const std::string& s) {
  uint64_t n = s.size();
  put(&n, 8);
  put(s.data(), s.size());
}

void GgufWriter::key(const std::string& k, GgufType t) {
  if (fd_ >= 0) throw Error("GgufWriter: metadata added after begin_data()");
  put_str(k);
  uint32_t raw = uint32_t(t);
  put(&raw, 4);
  ++n_kv_;
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  key(k, GgufType::String);
  put_str(v);
}
void GgufWriter::add_u32(const std::string& k, uint32_t v) {
  key(k, GgufType::U32);
  put(&v, 4);
}
void GgufWriter::add_i32(const std::string& k, int32_t v) {
  key(k, GgufType::I32);
  put(&v, 4);
}
void GgufWriter::add_f32(const std::string& k, float v) {
  key(k, GgufType::F32);
  put(&v, 4);
}
void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, GgufType::Bool);
  uint8_t b = v ? 1 : 0;
  put(&b, 1);
}
void GgufWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  key(k, GgufType::Array);
  uint32_t et = uint32_t(GgufType::String);
  uint64_t n = v.size();
  put(&et, 4);
  put(&n, 8);
  for (const auto& s : v) put_str(s);
}
void GgufWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  key(k, GgufType::Array);
  uint32_t et = uint32_t(GgufType::I32);
  uint64_t n = v.size();
  put(&et, 4);
  put(&n, 8);
  if (n) put(v.data(), v.size() * 4);
}

void GgufWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
  key(k, GgufType::Array);
  uint32_t et = uint32_t(GgufType::F32);
  uint64_t n = v.size();
  put(&et, 4);
  put(&n, 8);
  if (n) put(v.data(), v.size() * 4);
}

uint64_t GgufWriter::add_tensor(const std::string& name, DType t, const std::vector<uint64_t>& ne) {
  if (fd_ >= 0) throw Error("GgufWriter: tensor added after begin_data()");
  if (ne.empty() || ne.size() > kGgufMaxDims) throw Error("GgufWriter: tensor '" + name + "' has a bad rank");
  if (ne[0] % dtype_block_elems(t) != 0)
    throw Error(fmt::format("GgufWriter: tensor '{}' row of {} is not whole {} blocks", name, ne[0], dtype_name(t)));
  uint64_t count = 1;
  for (uint64_t d : ne) count *= d;
  Tensor x{name, t, ne, dtype_bytes(t, count), data_bytes_};
  data_bytes_ = (data_bytes_ + x.bytes + alignment_ - 1) / alignment_ * alignment_;
  tensors_.push_back(std::move(x));
  return tensors_.back().bytes;
}

void GgufWriter::raw_write(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    size_t take = std::min(n, kBufBytes - buf_.size());
    buf_.insert(buf_.end(), b, b + take);
    b += take;
    n -= take;
    if (buf_.size() == kBufBytes) flush();
  }
}

void GgufWriter::flush() {
  size_t done = 0;
  while (done < buf_.size()) {
    ssize_t r = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      throw Error(fmt::format("{}: write failed: {}", tmp_.string(), r < 0 ? std::strerror(errno) : "no space"));
    done += size_t(r);
  }
  written_ += buf_.size();
  buf_.clear();
}

void GgufWriter::begin_data() {
  if (fd_ >= 0) throw Error("GgufWriter: begin_data() twice");
  // The temporary sits next to the output so the final rename is atomic.
  std::string pattern = out_.string() + ".tmp.XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) throw Error(fmt::format("{}: cannot create output: {}", out_.string(), std::strerror(errno)));
  tmp_ = name.data();
  ::fchmod(fd_, 0644);
  buf_.reserve(kBufBytes);

  const uint32_t magic = kGgufMagic, version = kGgufVersion;
  const uint64_t n_tensors = tensors_.size();
  raw_write(&magic, 4);
  raw_write(&version, 4);
  raw_write(&n_tensors, 8);
  raw_write(&n_kv_, 8);
  raw_write(kv_.data(), kv_.size());
  uint64_t header = 24 + kv_.size();
  for (const Tensor& t : tensors_) {
    uint64_t n = t.name.size();
    raw_write(&n, 8);
    raw_write(t.name.data(), t.name.size());
    uint32_t dims = uint32_t(t.ne.size()), type = ggml_type_of(t.type);
    raw_write(&dims, 4);
    raw_write(t.ne.data(), t.ne.size() * 8);
    raw_write(&type, 4);
    raw_write(&t.offset, 8);
    header += 8 + n + 4 + 8 * t.ne.size() + 4 + 8;
  }
  const uint64_t pad = (alignment_ - header % alignment_) % alignment_;
  std::vector<uint8_t> zeros(pad, 0);
  raw_write(zeros.data(), zeros.size());
  current_ = 0;
  current_bytes_ = 0;
}

void GgufWriter::write(const void* data, size_t n) {
  if (fd_ < 0 || current_ >= tensors_.size()) throw Error("GgufWriter: write() outside a tensor");
  if (current_bytes_ + n > tensors_[current_].bytes)
    throw Error("GgufWriter: tensor '" + tensors_[current_].name + "' got more bytes than its shape holds");
  raw_write(data, n);
  current_bytes_ += n;
}

void GgufWriter::end_tensor() {
  const Tensor& t = tensors_.at(current_);
  if (current_bytes_ != t.bytes)
    throw Error(fmt::format("GgufWriter: tensor '{}' got {} bytes, expected {}", t.name, current_bytes_, t.bytes));
  // Every tensor, the last one too, is padded to the alignment: readers
  // (llama.cpp's gguf reader among them) expect the data section to be a
  // whole number of aligned blocks.
  const uint64_t pad = (alignment_ - t.bytes % alignment_) % alignment_;
  std::vector<uint8_t> zeros(pad, 0);
  raw_write(zeros.data(), zeros.size());
  ++current_;
  current_bytes_ = 0;
}

void GgufWriter::finish() {
  if (fd_ < 0 || current_ != tensors_.size()) throw Error("GgufWriter: finish() before every tensor was written");
  flush();
  if (::fsync(fd_) != 0) throw Error(fmt::format("{}: fsync failed: {}", tmp_.string(), std::strerror(errno)));
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error(fmt::format("{}: close failed: {}", tmp_.string(), std::strerror(errno)));
  }
  fd_ = -1;
  std::error_code ec;
  std::filesystem::rename(tmp_, out_, ec);
  if (ec) throw Error(fmt::format("{}: cannot rename {} to it: {}", out_.string(), tmp_.string(), ec.message()));
  finished_ = true;
}

}  // namespace strata
