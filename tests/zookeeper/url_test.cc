// ZooKeeper URLs and the MasterInfo JSON of the election znodes (no server needed).
#include "kernel/zookeeper/url.h"

#include <gtest/gtest.h>

#include "kernel/election/election.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::zookeeper {
namespace {

TEST(ZkUrlTest, ParsesServersPathAndCredentials) {
  auto url = parseZkUrl("zk://h1:2181,h2:2182,10.0.0.3:2183/mesos/");
  ASSERT_TRUE(url) << url.status().toString();
  EXPECT_EQ(url->servers, "h1:2181,h2:2182,10.0.0.3:2183");
  EXPECT_EQ(url->path, "/mesos");
  EXPECT_FALSE(url->credentials);

  auto authenticated = parseZkUrl("zk://alice:s3cr:et@h1:2181/a/b");
  ASSERT_TRUE(authenticated) << authenticated.status().toString();
  EXPECT_EQ(*authenticated->credentials, "alice:s3cr:et");
  EXPECT_EQ(authenticated->servers, "h1:2181");
  EXPECT_EQ(authenticated->path, "/a/b");
  EXPECT_EQ(authenticated->toString(), "zk://alice:*****@h1:2181/a/b");
}

TEST(ZkUrlTest, BadUrlsSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const auto& [text, message] : std::vector<Case>{
           {"http://h:1/p",
            "'http://h:1/p' is not a ZooKeeper URL (zk://host:port,.../path or "
            "file:///path)"},
           {"zk://h1:2181", "'zk://h1:2181' has no path (zk://host:port/path)"},
           {"zk:///p", "'zk:///p' names no servers"},
           {"zk://h1/p", "'zk://h1/p': server 'h1' is not host:port"},
           {"zk://h1:0/p", "'zk://h1:0/p': server 'h1:0' has a bad port"},
           {"zk://h1:99999/p", "'zk://h1:99999/p': server 'h1:99999' has a bad port"},
           {"zk://h1:1,/p", "'zk://h1:1,/p' has an empty server"},
           {"zk://h1:1/", "'zk://h1:1/' needs a path below '/' (zk://.../tessera)"},
           {"zk://h1:1/a//b", "'zk://h1:1/a//b' has an empty path segment"},
           {"zk://alice@h1:1/p", "'zk://alice@h1:1/p': credentials must be user:password"},
       }) {
    auto url = parseZkUrl(text);
    ASSERT_FALSE(url) << text;
    EXPECT_EQ(url.status().code(), api::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(url.status().message(), message);
  }
}

TEST(ZkUrlTest, FileUrlsHoldTheUrl) {
  testing::TempDir dir;
  auto file = dir.write("zk", "  zk://h1:2181,h2:2181/tessera\n");
  auto url = parseZkUrl("file://" + file.string());
  ASSERT_TRUE(url) << url.status().toString();
  EXPECT_EQ(url->servers, "h1:2181,h2:2181");
  EXPECT_EQ(url->path, "/tessera");

  auto missing = parseZkUrl("file://" + (dir.path() / "none").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().message(),
            "cannot read ZooKeeper URL file '" + (dir.path() / "none").string() + "'");
  auto bad = dir.write("bad", "zk://h1/p");
  auto parsed = parseZkUrl("file://" + bad.string());
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.status().message(),
            "in file '" + bad.string() + "': 'zk://h1/p': server 'h1' is not host:port");
  EXPECT_TRUE(isZkUrl("zk://x:1/p"));
  EXPECT_TRUE(isZkUrl("file:///etc/zk"));
  EXPECT_FALSE(isZkUrl("127.0.0.1:5050"));
}

}  // namespace
}  // namespace tessera::kernel::zookeeper

namespace tessera::kernel::election {
namespace {

TEST(MasterInfoJsonTest, IsMesosShapedAndRoundTrips) {
  MasterInfo info{"m-1", "127.0.0.1", 5050, "host-a", "1.2.3", ""};
  const std::string json = masterInfoJson(info);
  // Mesos writes the IPv4 address as inet_addr()'s uint32: 127.0.0.1 is 16777343.
  EXPECT_NE(json.find("\"ip\":16777343"), std::string::npos) << json;
  EXPECT_NE(json.find("\"pid\":\"master@127.0.0.1:5050\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"address\":{"), std::string::npos) << json;
  auto parsed = parseMasterInfoJson(json);
  ASSERT_TRUE(parsed) << parsed.status().toString();
  EXPECT_EQ(parsed->id, "m-1");
  EXPECT_EQ(parsed->address(), "127.0.0.1:5050");
  EXPECT_EQ(parsed->hostname, "host-a");
  EXPECT_EQ(parsed->version, "1.2.3");
}

TEST(MasterInfoJsonTest, ReadsWhatMesosWrites) {
  // A Mesos 1.x master's json.info_ content (10.0.0.5 = 0x0500000a as inet_addr gives it).
  auto parsed = parseMasterInfoJson(
      R"({"hostname":"m5","id":"e7b5-1","ip":83886090,"pid":"master@10.0.0.5:5050",)"
      R"("port":5050,"version":"1.11.0"})");
  ASSERT_TRUE(parsed) << parsed.status().toString();
  EXPECT_EQ(parsed->address(), "10.0.0.5:5050");
  auto bad = parseMasterInfoJson(R"({"id":"x"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), "MasterInfo has no valid 'port'");
  EXPECT_FALSE(parseMasterInfoJson("not json"));
}

TEST(MasterInfoJsonTest, ElectionNodesSortBySequence) {
  EXPECT_EQ(electionNodes({"json.info_0000000010", "log_replicas", "json.info_0000000002",
                           "json.info_x", "json.info_0000000007"}),
            (std::vector<std::string>{"json.info_0000000002", "json.info_0000000007",
                                      "json.info_0000000010"}));
}

}  // namespace
}  // namespace tessera::kernel::election
