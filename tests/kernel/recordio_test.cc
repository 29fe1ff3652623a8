#include "kernel/net/recordio.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>
#include <vector>

namespace tessera::kernel::net {
namespace {

TEST(RecordIoTest, EncodesLengthNewlineRecord) {
  EXPECT_EQ(encodeRecordIo("{\"type\":\"HEARTBEAT\"}"), "20\n{\"type\":\"HEARTBEAT\"}");
  EXPECT_EQ(encodeRecordIo(""), "0\n");
  EXPECT_EQ(encodeRecordIo("a\nb"), "3\na\nb");
}

TEST(RecordIoTest, SeveralRecordsInOneChunkIncludingEmptyOnes) {
  RecordIoDecoder decoder;
  std::deque<std::string> records;
  std::string stream = encodeRecordIo("one") + encodeRecordIo("") + encodeRecordIo("three\n");
  ASSERT_TRUE(decoder.feed(stream, records).isOk());
  EXPECT_EQ(records, (std::deque<std::string>{"one", "", "three\n"}));
  EXPECT_TRUE(decoder.idle());
}

TEST(RecordIoTest, RecordsSplitAtEveryPossiblePoint) {
  std::vector<std::string> input = {"first record", std::string(1000, 'x'), "", "last\n\n"};
  std::string stream;
  for (const auto& r : input) stream += encodeRecordIo(r);
  // Byte by byte, then random chunk sizes.
  {
    RecordIoDecoder decoder;
    std::deque<std::string> records;
    for (char c : stream) {
      ASSERT_TRUE(decoder.feed(std::string_view(&c, 1), records).isOk());
    }
    EXPECT_EQ(std::vector<std::string>(records.begin(), records.end()), input);
    EXPECT_TRUE(decoder.idle());
  }
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    RecordIoDecoder decoder;
    std::deque<std::string> records;
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::uniform_int_distribution<size_t>(0, 40)(rng);
      std::string_view chunk = std::string_view(stream).substr(pos, n);
      pos += chunk.size();
      ASSERT_TRUE(decoder.feed(chunk, records).isOk());
    }
    EXPECT_EQ(std::vector<std::string>(records.begin(), records.end()), input);
  }
}

TEST(RecordIoTest, PartialRecordIsNotIdle) {
  RecordIoDecoder decoder;
  std::deque<std::string> records;
  ASSERT_TRUE(decoder.feed("5\nab", records).isOk());
  EXPECT_TRUE(records.empty());
  EXPECT_FALSE(decoder.idle());
  ASSERT_TRUE(decoder.feed("cde1", records).isOk());
  EXPECT_EQ(records, std::deque<std::string>{"abcde"});
  EXPECT_FALSE(decoder.idle());
}

TEST(RecordIoTest, BadLengthLinesAreErrorsAndStick) {
  for (std::string bad :
       std::vector<std::string>{"\n", "x\n", "-1\n", "+1\n", " 1\n", "1 \n", "1\r\n", "0x10\n",
                                "123456789012345678901\n", std::string(30, '1')}) {
    RecordIoDecoder decoder;
    std::deque<std::string> records;
    api::Status s = decoder.feed(bad, records);
    ASSERT_FALSE(s.isOk()) << bad;
    EXPECT_EQ(s.code(), api::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(decoder.feed("1\na", records).isOk());  // failed for good
    EXPECT_TRUE(records.empty());
  }
  // Records before the bad line are still delivered.
  RecordIoDecoder decoder;
  std::deque<std::string> records;
  EXPECT_FALSE(decoder.feed("2\nokjunk\n", records).isOk());
  EXPECT_EQ(records, std::deque<std::string>{"ok"});
}

TEST(RecordIoTest, LengthOverTheMaximumIsRefusedBeforeBuffering) {
  RecordIoDecoder decoder(100);
  std::deque<std::string> records;
  ASSERT_TRUE(decoder.feed("100\n", records).isOk());
  ASSERT_TRUE(decoder.feed(std::string(100, 'a'), records).isOk());
  ASSERT_EQ(records.size(), 1u);
  api::Status s = decoder.feed("101\n", records);
  EXPECT_EQ(s.code(), api::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "RecordIO record of 101 bytes is over the maximum of 100");
  RecordIoDecoder huge;
  EXPECT_EQ(huge.feed("99999999999999999999\n", records).code(),
            api::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::kernel::net
