#pragma once

/// Mesos RecordIO framing, the body of the scheduler API's SUBSCRIBE stream: every record is
/// `<decimal byte length>\n<record bytes>` (no separator after the record).

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::net {

/// Frames one record: its length in decimal, a newline, the bytes.
std::string encodeRecordIo(std::string_view record);

/// Decodes a RecordIO stream fed in arbitrary chunks: a record may be split across chunks and a
/// chunk may hold several records. Not thread-safe (one stream, one reader). Once it has failed
/// it stays failed: a framing error leaves the rest of the stream unreadable.
class RecordIoDecoder {
 public:
  /// Records longer than `maxRecordBytes` are an error (a peer cannot make us buffer without
  /// limit).
  explicit RecordIoDecoder(size_t maxRecordBytes = 64 * 1024 * 1024)
      : maxRecordBytes_(maxRecordBytes) {}

  /// Consumes `chunk` and appends every record it completes to `records`, in order. Errors:
  /// InvalidArgument for a length line that is not a decimal number (empty, a sign, spaces,
  /// more than 20 digits) and ResourceExhausted for a length above the maximum; records
  /// completed before the error are still appended.
  api::Status feed(std::string_view chunk, std::deque<std::string>& records);

  /// True when no partial record is buffered (the stream may end here cleanly).
  bool idle() const { return !failed_ && buffer_.empty() && !haveLength_; }

 private:
  const size_t maxRecordBytes_;
  std::string buffer_;  // the partial length line, or the partial record once the length is known
  bool haveLength_ = false;
  size_t length_ = 0;
  bool failed_ = false;
  api::Status error_;
};

}  // namespace tessera::kernel::net
