#include "kernel/net/recordio.h"

#include <fmt/format.h>

#include <algorithm>

namespace tessera::kernel::net {

namespace {
// 2^64 - 1 has 20 digits; anything longer is not a length.
constexpr size_t kMaxLengthDigits = 20;
}  // namespace

std::string encodeRecordIo(std::string_view record) {
  std::string out = fmt::format("{}\n", record.size());
  out.append(record);
  return out;
}

api::Status RecordIoDecoder::feed(std::string_view chunk, std::deque<std::string>& records) {
  if (failed_) return error_;
  auto fail = [this](api::Status status) {
    failed_ = true;
    error_ = status;
    buffer_.clear();
    return status;
  };
  while (!chunk.empty()) {
    if (!haveLength_) {
      size_t newline = chunk.find('\n');
      size_t take = newline == std::string_view::npos ? chunk.size() : newline;
      buffer_.append(chunk.substr(0, take));
      if (buffer_.size() > kMaxLengthDigits) {
        return fail(api::invalidArgument("bad RecordIO length line '{}...'",
                                         buffer_.substr(0, kMaxLengthDigits)));
      }
      if (newline == std::string_view::npos) return {};
      chunk.remove_prefix(newline + 1);
      if (buffer_.empty() || !std::all_of(buffer_.begin(), buffer_.end(),
                                          [](char c) { return c >= '0' && c <= '9'; })) {
        return fail(api::invalidArgument("bad RecordIO length line '{}'", buffer_));
      }
      unsigned long long length = 0;
      bool overflow = false;
      for (char c : buffer_) {
        if (length > (~0ULL - 9) / 10) overflow = true;
        length = length * 10 + static_cast<unsigned>(c - '0');
      }
      if (overflow || length > maxRecordBytes_) {
        return fail(api::resourceExhausted("RecordIO record of {} bytes is over the maximum of {}",
                                           buffer_, maxRecordBytes_));
      }
      buffer_.clear();
      length_ = static_cast<size_t>(length);
      haveLength_ = true;
    }
    size_t take = std::min(chunk.size(), length_ - buffer_.size());
    buffer_.append(chunk.substr(0, take));
    chunk.remove_prefix(take);
    if (buffer_.size() == length_) {
      records.push_back(std::move(buffer_));
      buffer_.clear();
      haveLength_ = false;
    }
  }
  return {};
}

}  // namespace tessera::kernel::net
