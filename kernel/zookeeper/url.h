#pragma once

/// ZooKeeper URLs as Mesos takes them: `zk://host:port[,host:port...]/path`,
/// `zk://user:password@host:port,.../path` (digest authentication), and `file:///path` naming a
/// file that holds such a URL.

#include <optional>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::zookeeper {

struct ZkUrl {
  std::string servers;                     ///< "h1:2181,h2:2181", what zookeeper_init takes
  std::string path;                        ///< starts with '/', no trailing '/' (unless "/")
  std::optional<std::string> credentials;  ///< "user:password" for the digest scheme
  /// The URL back, with the password masked ("zk://user:*****@h:1/p").
  std::string toString() const;
};

/// Parses `text`. A `file://` URL is read and its (trimmed) content parsed. Errors:
/// InvalidArgument saying what is wrong ("no servers", "bad port", "path must start with
/// '/'", unreadable file).
api::Result<ZkUrl> parseZkUrl(std::string_view text);

/// True when `text` is a ZooKeeper master address (`zk://` or `file://`).
bool isZkUrl(std::string_view text);

}  // namespace tessera::kernel::zookeeper
