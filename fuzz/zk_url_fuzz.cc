// ZooKeeper URLs: --zk and --master (kernel/zookeeper/url.cc, parseZkUrl).
//
// Properties: parseZkUrl() never crashes; what it accepts has servers and an absolute path,
// and (without credentials, which toString() masks) prints to a URL that parses back equal.
// `file://` URLs name a file to read; they are skipped (the fuzzer must not read /dev/zero).

#include "fuzz/fuzz_check.h"
#include "kernel/zookeeper/url.h"

using tessera::fuzz::check;
using tessera::kernel::zookeeper::parseZkUrl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = tessera::fuzz::text(data, size);
  if (input.find("file://") != std::string_view::npos) return 0;
  tessera::kernel::zookeeper::isZkUrl(input);
  auto url = parseZkUrl(input);
  if (!url) return 0;
  check(!url->servers.empty(), "an accepted ZooKeeper URL has no servers");
  check(!url->path.empty() && url->path.front() == '/', "an accepted path is not absolute");
  if (url->credentials) return 0;
  auto again = parseZkUrl(url->toString());
  check(static_cast<bool>(again), "toString() of a parsed ZooKeeper URL does not parse");
  check(again->servers == url->servers && again->path == url->path,
        "toString() does not parse back to the same servers and path");
  return 0;
}
