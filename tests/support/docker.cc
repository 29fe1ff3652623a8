#include "tests/support/docker.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "tessera/api/json.h"

namespace tessera::testing {

namespace {

using modules::containerizer_docker::EngineClient;
using modules::containerizer_docker::urlEncode;

constexpr const char* kImageLabel = "org.tessera.test_image";
constexpr const char* kImageVersion = "2";  // bump when busyboxImageTar() changes

// One ustar entry: header, then the content padded to 512 bytes.
void addEntry(std::string& tar, const std::string& name, char type, unsigned mode,
              const std::string& content = "", const std::string& link = "") {
  char header[512];
  std::memset(header, 0, sizeof(header));
  std::snprintf(header, 100, "%s", name.c_str());
  std::snprintf(header + 100, 8, "%07o", mode);
  std::snprintf(header + 108, 8, "%07o", 0);
  std::snprintf(header + 116, 8, "%07o", 0);
  std::snprintf(header + 124, 12, "%011lo", static_cast<unsigned long>(content.size()));
  std::snprintf(header + 136, 12, "%011lo", 1700000000UL);
  header[156] = type;
  std::snprintf(header + 157, 100, "%s", link.c_str());
  std::memcpy(header + 257, "ustar", 6);
  std::memcpy(header + 263, "00", 2);
  std::memset(header + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(header + 148, 8, "%06o", sum);
  header[155] = ' ';
  tar.append(header, sizeof(header));
  tar += content;
  tar.append((512 - content.size() % 512) % 512, '\0');
}

}  // namespace

std::string busyboxImageTar() {
  std::ifstream in("/bin/busybox", std::ios::binary);
  std::stringstream binary;
  binary << in.rdbuf();
  std::string tar;
  addEntry(tar, "bin/", '5', 0755);
  addEntry(tar, "bin/busybox", '0', 0755, binary.str());
  for (const char* applet : {"sh", "httpd", "sleep", "cat", "echo", "ls", "true", "false", "env",
                             "head", "dd", "wget", "id", "pwd", "test", "grep", "hostname"}) {
    addEntry(tar, std::string("bin/") + applet, '2', 0777, "", "busybox");
  }
  addEntry(tar, "tmp/", '5', 01777);
  addEntry(tar, "www/", '5', 0755);
  addEntry(tar, "www/index.html", '0', 0644, "hello from tessera-test/busybox\n");
  tar.append(1024, '\0');
  return tar;
}

api::Status dockerReady() {
  static std::once_flag once;
  static api::Status status;
  std::call_once(once, [] {
    EngineClient client(kDockerSocket);
    auto ping = client.call("GET", "/_ping", "", std::chrono::seconds(5));
    if (!ping) {
      status = ping.status();
      return;
    }
    if (ping->status != 200) {
      status = api::unavailable("/_ping answered {}", ping->status);
      return;
    }
    // The image carries a version label, so an image of an older fixture is replaced.
    auto image = client.call("GET", fmt::format("/images/{}/json", kDockerTestImage));
    if (image && image->status == 200 &&
        image->body.find(fmt::format("\"{}\":\"{}\"", kImageLabel, kImageVersion)) !=
            std::string::npos) {
      return;
    }
    std::ifstream busybox("/bin/busybox");
    if (!busybox) {
      status = api::unavailable("/bin/busybox is missing (install busybox-static)");
      return;
    }
    auto imported =
        client.call("POST",
                    fmt::format("/images/create?fromSrc=-&repo={}&tag=latest&changes={}",
                                urlEncode(kDockerTestImage),
                                urlEncode(fmt::format("LABEL {}={}", kImageLabel, kImageVersion))),
                    busyboxImageTar(), std::chrono::seconds(120), "application/x-tar");
    if (!imported) {
      status = imported.status();
    } else if (imported->status != 200) {
      status = api::internalError("importing {}: {} {}", kDockerTestImage, imported->status,
                                  imported->body);
    }
  });
  return status;
}

std::vector<std::string> dockerContainersWithLabel(EngineClient& client, const std::string& key,
                                                   const std::string& value) {
  const std::string filter = fmt::format("{{\"label\":[{}]}}", api::jsonQuote(key + "=" + value));
  auto listed = client.call("GET", "/containers/json?all=1&filters=" + urlEncode(filter));
  std::vector<std::string> ids;
  if (!listed || listed->status != 200) return ids;
  auto array = Poco::JSON::Parser().parse(listed->body).extract<Poco::JSON::Array::Ptr>();
  for (size_t i = 0; i < array->size(); ++i) {
    ids.push_back(array->getObject(i)->getValue<std::string>("Id"));
  }
  return ids;
}

}  // namespace tessera::testing
