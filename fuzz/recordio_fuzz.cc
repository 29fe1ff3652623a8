// RecordIO: the scheduler API's event stream as the framework driver reads it from the master
// (kernel/net/recordio.cc, RecordIoDecoder), fed in chunks of every size.
//
// Properties: feed() never crashes or buffers past its limit; the same stream fed whole and fed
// in small chunks gives the same records and the same verdict; the records it decodes, encoded
// again, decode to the same records.

#include <deque>
#include <string>

#include "fuzz/fuzz_check.h"
#include "kernel/net/recordio.h"

using tessera::fuzz::check;
using tessera::kernel::net::encodeRecordIo;
using tessera::kernel::net::RecordIoDecoder;

namespace {

constexpr size_t kMaxRecord = 4096;

struct Decoded {
  std::deque<std::string> records;
  bool ok = true;
  bool idle = false;
};

Decoded decode(std::string_view stream, size_t chunk) {
  RecordIoDecoder decoder(kMaxRecord);
  Decoded out;
  for (size_t at = 0; at < stream.size() && out.ok; at += chunk) {
    out.ok = static_cast<bool>(decoder.feed(stream.substr(at, chunk), out.records));
  }
  out.idle = decoder.idle();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size; the rest is the stream.
  size_t chunk = data[0] % 16 + 1;
  std::string_view stream = tessera::fuzz::text(data + 1, size - 1);
  Decoded whole = decode(stream, stream.size() + 1);
  Decoded split = decode(stream, chunk);
  check(whole.ok == split.ok, "chunking changes whether a stream decodes");
  check(whole.records == split.records, "chunking changes the records");
  check(whole.idle == split.idle, "chunking changes whether the stream ends cleanly");
  std::string again;
  for (const auto& record : whole.records) {
    check(record.size() <= kMaxRecord, "a record over the maximum was accepted");
    again += encodeRecordIo(record);
  }
  Decoded reencoded = decode(again, chunk);
  check(reencoded.ok && reencoded.idle, "re-encoded records do not decode cleanly");
  check(reencoded.records == whole.records, "re-encoded records decode differently");
  return 0;
}
